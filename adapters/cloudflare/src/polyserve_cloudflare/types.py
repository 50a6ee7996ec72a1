"""The JavaScript objects the Workers runtime hands to a Python Worker, typed as ``Protocol``s.

Inside Pyodide these are ``JsProxy`` objects; outside it (unit tests, CPython) any
object with the same attributes will do. Only the members the adapter uses are
declared, under their JavaScript (camelCase) names. ``JsRuntime`` is the other
direction: how the adapter creates JavaScript values, so that it too can be
replaced outside Pyodide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence

__all__ = [
    "ExecutionContext",
    "JsBuffer",
    "JsHeaders",
    "JsMessageBatch",
    "JsQueueMessage",
    "JsRequest",
    "JsRuntime",
    "JsScheduledController",
]


class JsBuffer(Protocol):
    """An ``ArrayBuffer`` or typed array (``Uint8Array``)."""

    def to_bytes(self) -> bytes: ...


class JsHeaders(Protocol):
    """A Fetch ``Headers`` object.

    ``entries()`` yields ``[name, value]`` pairs with lower-case names; the values of
    a repeated name arrive joined with ``", "``, except ``Set-Cookie``, whose values
    ``getSetCookie()`` returns one by one.
    """

    def get(self, name: str) -> str | None: ...

    def entries(self) -> Iterable[Sequence[str]]: ...

    def getSetCookie(self) -> Iterable[str]: ...


class JsRequest(Protocol):
    """A Fetch ``Request``: ``url`` is absolute and still percent-encoded."""

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> JsHeaders: ...

    def arrayBuffer(self) -> Awaitable[JsBuffer]: ...


class JsQueueMessage(Protocol):
    """One message of a Queues ``MessageBatch``.

    ``timestamp`` is a JavaScript ``Date``; ``body`` is whatever the producer sent
    (a string, an ``ArrayBuffer``, a JSON value or any structured-clone value).
    """

    @property
    def id(self) -> str: ...

    @property
    def timestamp(self) -> Any: ...

    @property
    def body(self) -> Any: ...

    @property
    def attempts(self) -> int: ...

    def ack(self) -> None: ...

    def retry(self, options: Any = ...) -> None: ...


class JsMessageBatch(Protocol):
    """The batch a queue consumer receives: the queue's name and its messages."""

    @property
    def queue(self) -> str: ...

    @property
    def messages(self) -> Iterable[JsQueueMessage]: ...


class JsScheduledController(Protocol):
    """What a Cron Trigger delivers: ``scheduledTime`` in epoch milliseconds and its ``cron``."""

    @property
    def scheduledTime(self) -> float: ...

    @property
    def cron(self) -> str: ...


class ExecutionContext(Protocol):
    """The Worker's ``ctx``: ``waitUntil`` keeps the invocation alive for a promise."""

    def waitUntil(self, promise: Any) -> None: ...


class JsRuntime(Protocol):
    """How the adapter creates JavaScript values (Pyodide's ``js`` module by default)."""

    def new_response(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> Any:
        """A ``Response``: each header pair appended on its own; ``None`` means no body."""
        ...

    def new_stream_response(
        self, status: int, headers: Sequence[tuple[str, str]], chunks: AsyncIterator[bytes]
    ) -> Any:
        """A ``Response`` whose body is a ``ReadableStream`` pulling each chunk from ``chunks``."""
        ...

    def new_object(self, fields: Mapping[str, Any]) -> Any:
        """A plain JavaScript object with ``fields`` (options for JavaScript calls)."""
        ...

    def json_stringify(self, value: Any) -> str | None:
        """``JSON.stringify(value)``: ``None`` where JavaScript returns ``undefined``."""
        ...

    def json_parse(self, text: str) -> Any:
        """``JSON.parse(text)``: a JavaScript value (raises on text that is not JSON)."""
        ...

    def to_js(self, value: Any) -> Any:
        """A JavaScript copy of ``value``: bytes as a ``Uint8Array``, dicts as plain
        objects, lists as arrays (JavaScript values inside are kept as they are)."""
        ...

    def is_null(self, value: Any) -> bool:
        """True for JavaScript ``null`` and ``undefined`` (however Pyodide hands them over)."""
        ...

    def unwrap(self, binding: Any) -> Any:
        """The JavaScript object behind a binding the ``workers`` SDK wrapped (else ``binding``)."""
        ...
