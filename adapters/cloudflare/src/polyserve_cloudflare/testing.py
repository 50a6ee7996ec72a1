"""Stand-ins for the Workers runtime's JavaScript objects, to run a Worker under CPython.

They behave as the real objects do where the adapter can tell the difference:
``FakeHeaders`` lower-cases names and joins the values of a repeated name with
``", "`` (keeping ``Set-Cookie`` values apart), a ``FakeRequest`` body can be read
once, and ``FakeRuntime.new_response`` rejects what ``new Response()`` rejects::

    Default = entrypoint(app, runtime=FakeRuntime())
    worker = Default(FakeExecutionContext(), {})
    response = await worker.fetch(FakeRequest("GET", "https://example.com/pets/1"))
    assert response.status == 200
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

__all__ = [
    "FakeBatch",
    "FakeBuffer",
    "FakeController",
    "FakeDate",
    "FakeExecutionContext",
    "FakeHeaders",
    "FakeJsValue",
    "FakeMessage",
    "FakeRequest",
    "FakeResponse",
    "FakeRuntime",
]

_NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


class FakeHeaders:
    """A Fetch ``Headers``: case-insensitive, iterated in name order, repeats joined."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in pairs:
            self.append(name, value)

    def append(self, name: str, value: str) -> None:
        """Add one value, as ``Headers.append`` does (leading/trailing whitespace removed).

        Raises:
            TypeError: the name is empty or either part holds CR, LF or NUL.
        """
        if not name or any(c in name + value for c in "\r\n\0"):
            raise TypeError(f"invalid header {name!r}: {value!r}")
        self._items.append((name.lower(), value.strip(" \t")))

    def get(self, name: str) -> str | None:
        values = [v for k, v in self._items if k == name.lower()]
        return ", ".join(values) if values else None

    def getSetCookie(self) -> list[str]:
        return [v for k, v in self._items if k == "set-cookie"]

    def entries(self) -> list[tuple[str, str]]:
        """Sorted by name; each ``Set-Cookie`` value on its own, other repeats joined."""
        out: list[tuple[str, str]] = []
        for name in sorted({k for k, _ in self._items}):
            if name == "set-cookie":
                out.extend((name, v) for v in self.getSetCookie())
            else:
                out.append((name, self.get(name) or ""))
        return out


@dataclass(frozen=True)
class FakeBuffer:
    """An ``ArrayBuffer`` or ``Uint8Array``."""

    data: bytes

    def to_bytes(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class FakeJsValue:
    """Any other JavaScript value (an object, an array): ``JSON.stringify`` gives ``data``'s JSON."""

    data: Any


@dataclass(frozen=True)
class FakeDate:
    """A JavaScript ``Date``."""

    millis: float

    def getTime(self) -> float:
        return self.millis

    @classmethod
    def from_datetime(cls, when: dt.datetime) -> FakeDate:
        return cls(when.timestamp() * 1000)


class FakeRequest:
    """A Fetch ``Request``; its body can be read once, as in JavaScript."""

    def __init__(
        self,
        method: str,
        url: str,
        headers: FakeHeaders | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        self.method = method.upper()
        self.url = url
        self.headers = headers if isinstance(headers, FakeHeaders) else FakeHeaders(headers)
        self.body = body
        self.bodyUsed = False

    async def arrayBuffer(self) -> FakeBuffer:
        if self.bodyUsed:
            raise TypeError("Body is unusable: Body has already been read")
        self.bodyUsed = True
        return FakeBuffer(self.body)


@dataclass
class FakeResponse:
    """What ``FakeRuntime.new_response`` makes: ``body`` is ``None`` for no body.

    A streamed response (``new_stream_response``) has ``stream``, the chunks its
    ``ReadableStream`` would pull, read with ``read()``.
    """

    status: int
    headers: FakeHeaders
    body: bytes | None
    stream: AsyncIterator[bytes] | None = None

    @property
    def content(self) -> bytes:
        """The body; ``ValueError`` for a stream, which only ``read()`` can read."""
        if self.stream is not None:
            raise ValueError("a streamed response is read with read()")
        return self.body or b""

    async def read(self) -> bytes:
        """The whole body, streamed or not."""
        if self.stream is None:
            return self.body or b""
        return b"".join([chunk async for chunk in self.stream])

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class FakeMessage:
    """A queue message that records whether it was acknowledged or retried."""

    id: str
    body: Any
    timestamp: Any = field(default_factory=lambda: FakeDate(0))
    attempts: int = 1
    acked: bool = False
    retried: bool = False
    retry_options: Any = None

    def ack(self) -> None:
        self.acked = True

    def retry(self, options: Any = None) -> None:
        self.retried = True
        self.retry_options = options

    @property
    def settled(self) -> str:
        """``"acked"``, ``"retried"``, ``"both"`` or ``"none"``."""
        if self.acked and self.retried:
            return "both"
        return "acked" if self.acked else "retried" if self.retried else "none"


@dataclass
class FakeBatch:
    """A ``MessageBatch`` from the queue called ``queue``."""

    queue: str
    messages: Sequence[FakeMessage]


@dataclass(frozen=True)
class FakeController:
    """A ``ScheduledController``: ``scheduledTime`` in epoch milliseconds."""

    scheduledTime: float
    cron: str


@dataclass
class FakeExecutionContext:
    """The Worker's ``ctx``; records what ``waitUntil`` was given."""

    waited: list[Any] = field(default_factory=list)

    def waitUntil(self, promise: Any) -> None:
        self.waited.append(promise)


class FakeRuntime:
    """A ``JsRuntime`` that makes ``FakeResponse``s and plain dicts."""

    def new_response(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> FakeResponse:
        """Raises ``ValueError`` (JavaScript's RangeError) or ``TypeError`` as ``Response()`` does."""
        if not 200 <= status <= 599:
            raise ValueError(f"status {status} is outside 200-599")
        if body is not None and status in _NULL_BODY_STATUSES:
            raise TypeError(f"a response with status {status} cannot have a body")
        return FakeResponse(status, FakeHeaders(headers), None if body is None else bytes(body))

    def new_stream_response(
        self, status: int, headers: Sequence[tuple[str, str]], chunks: AsyncIterator[bytes]
    ) -> FakeResponse:
        """A response whose body is ``chunks``; the errors of ``new_response``."""
        response = self.new_response(status, headers, None)
        response.stream = chunks
        return response

    def new_object(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return dict(fields)

    def json_stringify(self, value: Any) -> str | None:
        """JSON text of a ``FakeJsValue`` (``TypeError`` if it has none); ``None`` otherwise."""
        if not isinstance(value, FakeJsValue):
            return None
        try:
            return json.dumps(
                value.data, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
        except ValueError as exc:
            raise TypeError(str(exc)) from None
