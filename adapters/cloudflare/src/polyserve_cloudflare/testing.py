"""Stand-ins for the Workers runtime's JavaScript objects, to run a Worker under CPython.

They behave as the real objects do where the adapter can tell the difference:
``FakeHeaders`` lower-cases names and joins the values of a repeated name with
``", "`` (keeping ``Set-Cookie`` values apart), a ``FakeRequest`` body can be read
once, and ``FakeRuntime.new_response`` rejects what ``new Response()`` rejects::

    Default = entrypoint(app, runtime=FakeRuntime())
    worker = Default(FakeExecutionContext(), {})
    response = await worker.fetch(FakeRequest("GET", "https://example.com/pets/1"))
    assert response.status == 200

Native events as JSON: ``build("queue", body={"id": 1})`` (or ``BUILDERS[kind]``) gives
the JSON form of what the runtime hands the Worker, in the shape of the samples this
adapter ships: a ``Request`` (``method``, ``url``, ``headers`` as pairs, ``body`` text or
``bodyBase64``), a ``MessageBatch`` (``queue``, ``messages``; a body
``{"$arrayBuffer": base64}`` is an ``ArrayBuffer``) or a ``ScheduledController``
(``cron``, ``scheduledTime``). ``native(event)`` makes the stand-ins above from it,
``await dispatch(worker, event)`` calls the matching handler of an ``entrypoint``
instance, and ``answer(result)`` is its result as JSON. Keyword overrides replace the
defaults named in a builder's signature; an unknown one raises ``TypeError``.
"""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

    from polyserve.app import App
    from polyserve.events import HttpRequest
    from polyserve.testing import TestResponse

__all__ = [
    "BUILDERS",
    "ClientTransport",
    "FakeBatch",
    "FakeBuffer",
    "FakeController",
    "FakeD1",
    "FakeD1Statement",
    "FakeDate",
    "FakeExecutionContext",
    "FakeHeaders",
    "FakeJsValue",
    "FakeMessage",
    "FakeRequest",
    "FakeResponse",
    "FakeRuntime",
    "answer",
    "build",
    "client_transport",
    "dispatch",
    "invoke",
    "kind_of",
    "native",
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


def _js_int(text: str) -> int | float:
    value = int(text)
    return value if abs(value) <= 2**53 else float(value)


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

    def json_parse(self, text: str) -> Any:
        """``json.loads``, with JavaScript's numbers: integers beyond 2**53 become floats."""
        return json.loads(text, parse_int=_js_int)

    def to_js(self, value: Any) -> Any:
        """``value`` itself: the fakes take Python values."""
        return value

    def is_null(self, value: Any) -> bool:
        return value is None

    def unwrap(self, binding: Any) -> Any:
        return binding

    def json_stringify(self, value: Any) -> str | None:
        """JSON text of a ``FakeJsValue`` or of dicts and lists (``TypeError`` if it has
        none); ``None`` otherwise."""
        if isinstance(value, FakeJsValue):
            value = value.data
        elif not isinstance(value, (dict, list)):
            return None
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except ValueError as exc:
            raise TypeError(str(exc)) from None


class FakeD1:
    """A D1 database binding on a SQLite file (D1 runs SQLite): ``prepare(sql).bind(...)``
    then ``await .first()``, ``.run()`` or ``.all()``.

    Rows come back as objects with one attribute per column, as D1's do in Python.
    Each thread and process opens its own connection, so several can share the file.
    """

    def __init__(self, path: str = ":memory:") -> None:
        import threading

        self.path = path
        self._local = threading.local()
        self._shared: Any = None
        self._lock = threading.Lock()
        self._opened: list[Any] = []

    def _connection(self) -> Any:
        import os
        import sqlite3

        if self.path == ":memory:":
            if self._shared is None:
                self._shared = sqlite3.connect(
                    ":memory:", isolation_level=None, check_same_thread=False
                )
                self._opened.append(self._shared)
            return self._shared
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        connection = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._local.held = (os.getpid(), connection)
        self._opened.append(connection)
        return connection

    def close(self) -> None:
        """Close every connection opened here (it reopens them if used again)."""
        import threading

        with self._lock:
            opened, self._opened = self._opened, []
            self._shared = None
            self._local = threading.local()
        for connection in opened:
            connection.close()

    def prepare(self, sql: str) -> FakeD1Statement:
        return FakeD1Statement(self, sql, ())

    def execute(self, sql: str, values: Sequence[Any]) -> list[Any]:
        """Run one statement; its rows, each with an attribute per column."""
        from types import SimpleNamespace

        with self._lock:
            cursor = self._connection().execute(sql, tuple(values))
            names = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        return [SimpleNamespace(**dict(zip(names, row, strict=True))) for row in rows]


@dataclass(frozen=True)
class FakeD1Statement:
    """A prepared statement of ``FakeD1``."""

    database: FakeD1
    sql: str
    values: tuple[Any, ...]

    def bind(self, *values: Any) -> FakeD1Statement:
        return FakeD1Statement(self.database, self.sql, values)

    async def first(self) -> Any:
        rows = self.database.execute(self.sql, self.values)
        return rows[0] if rows else None

    async def all(self) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(results=self.database.execute(self.sql, self.values))

    async def run(self) -> Any:
        return await self.all()


# -- native events as JSON ---------------------------------------------------------------

_Body = str | bytes | dict[str, Any] | list[Any]


def fetch(
    method: str = "GET",
    path: str = "/",
    query: str | dict[str, str] = "",
    headers: dict[str, str] | None = None,
    body: _Body | None = None,
    host: str = "app.example.workers.dev",
    client_ip: str = "198.51.100.23",
    ray: str = "8f3a1b2c4d5e6f70-AMS",
) -> dict[str, Any]:
    """A Fetch ``Request`` as the Worker's ``fetch`` receives it (Cloudflare's ``cf-*`` set)."""
    text = query if isinstance(query, str) else urlencode(query)
    url = f"https://{host}{quote(path, safe='/%')}" + (f"?{text}" if text else "")
    hdrs = {
        "cf-connecting-ip": client_ip,
        "cf-ray": ray,
        "host": host,
        "x-forwarded-proto": "https",
    } | {k.lower(): v for k, v in (headers or {}).items()}
    event: dict[str, Any] = {"method": method.upper(), "url": url}
    if isinstance(body, (dict, list)):
        hdrs.setdefault("content-type", "application/json")
        body = json.dumps(body)
    event["headers"] = sorted([k, v] for k, v in hdrs.items())
    if isinstance(body, bytes):
        event["bodyBase64"] = base64.b64encode(body).decode()
    elif body:
        event["body"] = body
    return event


def _message_body(body: Any) -> Any:
    if isinstance(body, (bytes, bytearray)):
        return {"$arrayBuffer": base64.b64encode(body).decode()}
    return body


def message_batch(
    body: Any = "",
    queue: str = "orders",
    message_id: str = "4a1c9d53e0b1f8e2a7c6d5b4a3f2e1d0",
    attempts: int = 1,
    timestamp: str = "2025-06-01T09:15:02.481Z",
) -> dict[str, Any]:
    """A ``MessageBatch`` of one message (``body``: any JSON value, or ``bytes``)."""
    message = {
        "id": message_id,
        "timestamp": timestamp,
        "attempts": attempts,
        "body": _message_body(body),
    }
    return {"queue": queue, "messages": [message]}


def r2_notification(
    bucket: str = "photos",
    key: str = "albums/lake.jpg",
    action: str = "PutObject",
    size: int = 482113,
    queue: str = "photo-events",
    event_time: str = "2025-07-14T08:02:11.512Z",
) -> dict[str, Any]:
    """An R2 event notification, delivered to the queue ``queue`` (``DeleteObject``, ...)."""
    obj: dict[str, Any] = {"key": key}
    if action in ("PutObject", "CopyObject", "CompleteMultipartUpload"):
        obj |= {"size": size, "eTag": "5d41402abc4b2a76b9719d911017c592"}
    notification = {
        "account": "9e1c4a7b2d3f4e5a6b7c8d9e0f1a2b3c",
        "action": action,
        "bucket": bucket,
        "object": obj,
        "eventTime": event_time,
    }
    return message_batch(body=notification, queue=queue)


def scheduled(cron: str = "0 3 * * *", scheduled_time: int = 1748746800000) -> dict[str, Any]:
    """A Cron Trigger firing: the ``ScheduledController`` for ``cron`` (as in the Wrangler file)."""
    return {"cron": cron, "scheduledTime": scheduled_time, "type": "scheduled"}


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "fetch": fetch,
    "queue": message_batch,
    "r2_notification": r2_notification,
    "scheduled": scheduled,
}


def build(kind: str, **overrides: Any) -> dict[str, Any]:
    """The native event of ``kind`` (a key of ``BUILDERS``) with ``overrides`` applied."""
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise KeyError(
            f"unknown Cloudflare event kind {kind!r}; known: {', '.join(BUILDERS)}"
        ) from None
    allowed = inspect.signature(builder).parameters
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"unknown override(s) {', '.join(unknown)} for {kind!r}; known: {', '.join(allowed)}"
        )
    return builder(**overrides)


def kind_of(event: object) -> str | None:
    """``"fetch"``, ``"queue"`` or ``"scheduled"`` for a JSON event of that shape, else ``None``."""
    if not isinstance(event, dict):
        return None
    if {"method", "url", "headers"} <= event.keys():
        return "fetch"
    if {"queue", "messages"} <= event.keys():
        return "queue"
    if {"cron", "scheduledTime"} <= event.keys():
        return "scheduled"
    return None


def _js_value(value: Any) -> Any:
    if isinstance(value, dict) and value.keys() == {"$arrayBuffer"}:
        return FakeBuffer(base64.b64decode(value["$arrayBuffer"]))
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return FakeJsValue(value)


def _date(value: str) -> FakeDate:
    return FakeDate.from_datetime(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))


def native(event: Mapping[str, Any]) -> FakeRequest | FakeBatch | FakeController:
    """The stand-in the runtime would hand the Worker for the JSON ``event``.

    Raises:
        ValueError: ``event`` is none of the three shapes.
    """
    kind = kind_of(event)
    if kind == "fetch":
        if "bodyBase64" in event:
            body = base64.b64decode(event["bodyBase64"])
        else:
            body = str(event.get("body", "")).encode()
        pairs = [(str(k), str(v)) for k, v in event["headers"]]
        return FakeRequest(event["method"], event["url"], pairs, body)
    if kind == "queue":
        messages = [
            FakeMessage(m["id"], _js_value(m["body"]), _date(m["timestamp"]), m["attempts"])
            for m in event["messages"]
        ]
        return FakeBatch(event["queue"], messages)
    if kind == "scheduled":
        return FakeController(event["scheduledTime"], event["cron"])
    raise ValueError(
        "not a Workers event: expected a Request (method, url, headers), a MessageBatch "
        "(queue, messages) or a ScheduledController (cron, scheduledTime)"
    )


async def dispatch(worker: Any, event: Mapping[str, Any], env: Any = None) -> Any:
    """Call ``worker``'s handler for ``event``: the ``FakeResponse`` of ``fetch``, the settled
    ``FakeBatch`` of ``queue``, ``None`` for ``scheduled``; what a handler raises propagates."""
    raw = native(event)
    if isinstance(raw, FakeRequest):
        return await worker.fetch(raw)
    if isinstance(raw, FakeBatch):
        await worker.queue(raw, env, FakeExecutionContext())
        return raw
    await worker.scheduled(raw, env, FakeExecutionContext())
    return None


def answer(result: Any) -> Any:
    """``dispatch``'s result as JSON: a response's ``status``, ``headers`` and ``body`` (text, or
    ``bodyBase64``), a batch's ``messages`` and how each was settled, or ``None``."""
    if isinstance(result, FakeResponse):
        out: dict[str, Any] = {"status": result.status, "headers": result.headers.entries()}
        try:
            out["body"] = result.content.decode()
        except UnicodeDecodeError:
            out["bodyBase64"] = base64.b64encode(result.content).decode()
        return out
    if isinstance(result, FakeBatch):
        return {
            "queue": result.queue,
            "messages": [
                {"id": m.id, "settled": m.settled, "retry": m.retry_options}
                for m in result.messages
            ],
        }
    return None


# -- the hooks of polyserve.testing.TestClient(app, provider="cloudflare") and `polyserve invoke` --


class ClientTransport:
    """Sends a ``TestClient``'s requests and events through ``entrypoint(app)`` on the fakes.

    Every method is a coroutine, as the Worker's handlers are. ``http`` answers with a
    ``TestResponse`` whose ``native`` is the ``FakeResponse``; ``queue`` returns the
    settled ``FakeBatch`` (each message ``acked`` or ``retried``); ``schedule`` returns
    ``None``, raising what the handler raised.
    """

    def __init__(self, app: App, env: Any = None) -> None:
        from polyserve_cloudflare import entrypoint

        self.app = app
        self.env = {} if env is None else env
        self.worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), self.env)

    async def http(self, request: HttpRequest) -> TestResponse:
        from polyserve.events import Headers
        from polyserve.testing import TestResponse

        # A Fetch Headers joins the values of a repeated name.
        headers = {k: ", ".join(v) for k, v in request.headers.to_multi_dict().items()}
        headers.setdefault("cf-ray", request.request_id)
        event = fetch(
            method=request.method,
            path=request.path,
            query=request.query.to_string(),
            headers=headers,
            body=request.body,
        )
        response = await dispatch(self.worker, event, self.env)
        pairs = response.headers.entries()
        return TestResponse(response.status, Headers(pairs), response.content, native=response)

    async def queue(self, name: str, body: Any, overrides: Mapping[str, Any]) -> Any:
        event = build("queue", body="" if body is None else body, queue=name, **overrides)
        return await dispatch(self.worker, event, self.env)

    async def schedule(self, name: str, overrides: Mapping[str, Any]) -> Any:
        from polyserve_cloudflare._scheduled import cron_table

        crons = [cron for cron, logical in cron_table(self.app).items() if logical == name]
        if not crons:
            raise LookupError(f"schedule {name!r} has no cron= for a Cron Trigger to fire")
        event = build("scheduled", cron=crons[0], **overrides)
        return await dispatch(self.worker, event, self.env)

    async def deliver(self, kind: str, overrides: Mapping[str, Any]) -> Any:
        return await self.deliver_event(build(kind, **overrides))

    async def deliver_event(self, event: Mapping[str, Any]) -> Any:
        """Hand the JSON ``event`` to the Worker (see ``dispatch``)."""
        return await dispatch(self.worker, event, self.env)


def client_transport(app: App) -> ClientTransport:
    """The transport ``polyserve.testing.TestClient(app, provider="cloudflare")`` sends through."""
    return ClientTransport(app)


def invoke(app: App, event: Mapping[str, Any]) -> Any:
    """Run ``entrypoint(app)``'s handler for ``event`` once; its result as JSON (see ``answer``).

    Raises:
        UnsupportedEventError: ``event`` is none of the Workers event shapes.
    """
    import asyncio

    from polyserve.errors import UnsupportedEventError

    try:
        native(event)  # a wrong event fails here, before the Worker is made
    except ValueError as exc:
        raise UnsupportedEventError(str(exc), description={"provider": "cloudflare"}) from None
    return answer(asyncio.run(ClientTransport(app).deliver_event(event)))
