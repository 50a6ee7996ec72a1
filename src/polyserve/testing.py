"""Test an app without a cloud: ``TestClient(app)`` and ``AsyncTestClient(app)``.

``client.get("/pets/1")`` sends an HTTP request through the app's real pipeline
(middleware, dependencies, error handling) and returns a ``TestResponse``;
``client.queue("orders", {"id": 1})`` delivers a message to a registration and
returns the ``BatchResult`` a platform would act on (succeeded, failed with any
``Retry`` delay, set aside); ``client.schedule("nightly")``, ``client.storage(...)``
and ``client.cloudevent(...)`` run their handler and return what it returned, raising
what it raised (the platform would retry). ``app.dependency_overrides`` applies, and
``client.override(provider, replacement)`` sets one for a ``with`` block.

What the app sends to queues and topics (``app.queue_out``, ``app.topic_out``) goes to
the in-memory backend unless another was chosen: ``client.sent("orders")`` lists it as
the consumer would receive it, and ``client.outbound`` is the backend (objects too).

``TestClient(app, provider="aws")`` goes through ``polyserve_aws.handler`` instead,
with events from ``polyserve_aws.testing``: the ``TestResponse`` then has the Lambda
response document in ``native``, and ``queue_native`` returns the batch response document.
``provider="azure"``, ``"gcp"`` or ``"cloudflare"`` go through that adapter's real entry
(the generated Azure function, functions-framework's targets, the Worker's handlers)
with its native objects, through the transport its ``testing`` module provides
(``client_transport``), imported on first use so that core never depends on an adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import inspect
import itertools
import json as _json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from polyserve.context import Context
from polyserve.errors import ConfigurationError, MissingDependencyError
from polyserve.events import (
    CloudEvent,
    Headers,
    HttpRequest,
    HttpResponse,
    Message,
    QueryParams,
    ScheduleEvent,
    StorageAction,
    StorageEvent,
)
from polyserve.routing import Trigger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from polyserve.app import App
    from polyserve.batch import BatchResult
    from polyserve.outbound import MemoryBackend

__all__ = ["AsyncTestClient", "TestClient", "TestResponse"]

_PROVIDERS = ("aws", "azure", "cloudflare", "gcp")
_Body = bytes | str | dict[str, Any] | list[Any] | None


@dataclass(frozen=True)
class TestResponse:
    """An HTTP answer: ``status_code``, ``headers``, ``content``; ``native`` is the provider's."""

    __test__ = False  # not a pytest test class

    status_code: int
    headers: Headers
    content: bytes
    native: Any = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return _json.loads(self.content)

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies the response sets, by name."""
        out = {}
        for line in self.headers.get_all("set-cookie"):
            name, _, rest = line.partition("=")
            out[name.strip()] = rest.split(";", 1)[0]
        return out


def _encode(body: _Body, json: Any, headers: dict[str, str]) -> bytes:
    if json is not None:
        headers.setdefault("content-type", "application/json")
        return _json.dumps(json).encode()
    if isinstance(body, (dict, list)):
        headers.setdefault("content-type", "application/json")
        return _json.dumps(body).encode()
    if isinstance(body, str):
        return body.encode()
    return body or b""


class _Base:
    def __init__(self, app: App, provider: str | None = None) -> None:
        if provider is not None and provider not in _PROVIDERS:
            raise ConfigurationError(
                f"TestClient provider {provider!r} is not supported; use None or one of "
                f"{', '.join(_PROVIDERS)}"
            )
        self.app = app
        self.provider = provider
        self.cookies: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._native: Any = None
        self._transport: Any = None
        from polyserve.outbound.memory import memory_in_use

        #: The in-memory backend the app sends to, or ``None`` when another was chosen.
        self.outbound: MemoryBackend | None = memory_in_use()
        # Messages sent before this client was made are not this test's.
        self._sent_before = (
            {k: len(v) for k, v in self.outbound.sent.items()} if self.outbound else {}
        )

    def sent(self, name: str, kind: str = "queue") -> list[Message]:
        """What the app sent to queue ``name`` (``kind="topic"`` for a topic) since this
        client was made, as its consumer receives it: ``json()``, ``attributes`` (with
        ``content-type`` and any ``traceparent``), ``group_key``.

        Raises:
            ConfigurationError: the outbound backend in use is not the in-memory one.
        """
        backend = self.outbound
        if backend is None:
            raise ConfigurationError(
                "client.sent needs the in-memory outbound backend; POLYSERVE_OUTBOUND or "
                "polyserve.outbound.configure chose another"
            )
        return backend.received(name, kind)[self._sent_before.get((kind, name), 0) :]

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _context(self) -> Context:
        return Context("test", self._next_id("inv"), self.app.name, is_cold_start=False)

    @contextlib.contextmanager
    def override(
        self, provider: Callable[..., Any], replacement: Callable[..., Any]
    ) -> Iterator[None]:
        """Replace a dependency provider for the ``with`` block."""
        overrides = self.app.dependency_overrides
        had, old = provider in overrides, overrides.get(provider)
        overrides[provider] = replacement
        try:
            yield
        finally:
            if had:
                overrides[provider] = old  # type: ignore[assignment]
            else:
                overrides.pop(provider, None)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str] | None,
        body: _Body,
        json: Any,
    ) -> HttpRequest:
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        jar = self.cookies | dict(cookies or {})
        if jar:
            hdrs["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        data = _encode(body, json, hdrs)
        target, _, query = path.partition("?")
        if params:
            query = "&".join(filter(None, [query, urlencode(params)]))
        return HttpRequest(
            method=method.upper(),
            path=target,
            query=QueryParams.from_string(query),
            headers=Headers(list(hdrs.items())),
            body=data,
            client="127.0.0.1",
            request_id=self._next_id("req"),
        )

    def _aws(self) -> Any:
        if self._native is None:
            import polyserve_aws  # type: ignore[import-not-found,unused-ignore]

            self._native = polyserve_aws.handler(self.app)
        return self._native

    def _aws_http(self, request: HttpRequest) -> TestResponse:
        from polyserve_aws.testing import (  # type: ignore[import-not-found,unused-ignore]
            LambdaContext,
            build,
        )

        cookie = request.headers.get("cookie")
        headers = {k: v for k, v in request.headers.items() if k != "cookie"}
        event = build(
            "http_api",
            method=request.method,
            path=request.path,
            query=request.query.to_string(),
            headers=headers,
            cookies=cookie.split("; ") if cookie else None,
            body=request.body or None,
            request_id=request.request_id,
        )
        out = _json.loads(_json.dumps(self._aws()(event, LambdaContext(request.request_id))))
        pairs = list(out.get("headers", {}).items())
        pairs += [("set-cookie", c) for c in out.get("cookies", [])]
        raw = out.get("body") or ""
        if out.get("isBase64Encoded"):
            import base64

            content = base64.b64decode(raw)
        else:
            content = raw.encode()
        return TestResponse(out["statusCode"], Headers(pairs), content, native=out)

    # -- azure, gcp, cloudflare: the adapter's own transport -------------------------

    def _provider(self) -> Any:
        """The adapter's ``testing.client_transport(app)``, imported on first use.

        Its methods (``http``, ``queue``, ``schedule``, ``deliver``) may be coroutines.
        """
        if self._transport is None:
            try:
                module = importlib.import_module(f"polyserve_{self.provider}.testing")
            except ImportError as exc:
                raise MissingDependencyError(
                    f"polyserve-{self.provider}", feature=f"TestClient(provider={self.provider!r})"
                ) from exc
            self._transport = module.client_transport(self.app)
        return self._transport

    def _native_event(self, method: str, *args: Any) -> Any:
        if self.provider is None:
            raise ConfigurationError(f"{method}_native needs TestClient(app, provider=...)")
        return getattr(self._provider(), method)(*args)

    def _answer(self, response: HttpResponse | TestResponse) -> TestResponse:
        if isinstance(response, HttpResponse):
            response = TestResponse(response.status, response.headers, response.body, response)
        self.cookies.update(response.cookies)
        return response

    def _message(
        self, name: str, body: _Body, attempt: int, attributes: Mapping[str, str] | None
    ) -> Message:
        hdrs: dict[str, str] = {}
        return Message(
            id=self._next_id("msg"),
            body=_encode(body, None, hdrs),
            attributes=dict(attributes or {}),
            attempt=attempt,
            enqueued_at=dt.datetime.now(dt.timezone.utc),
            source=name,
        )

    @staticmethod
    def _storage(bucket: str, key: str, action: StorageAction | str, size: int | None) -> object:
        return StorageEvent(
            id=f"{bucket}/{key}",
            action=StorageAction(action),
            bucket=bucket,
            key=key,
            size=size,
            occurred_at=dt.datetime.now(dt.timezone.utc),
        )

    def _cloudevent(self, type: str, source: str, data: Any, subject: str | None) -> CloudEvent:
        return CloudEvent(
            id=self._next_id("ce"),
            source=source,
            type=type,
            subject=subject,
            time=dt.datetime.now(dt.timezone.utc),
            datacontenttype="application/json",
            data=data,
        )

    def _schedule(self, name: str, payload: Any) -> ScheduleEvent:
        return ScheduleEvent(
            id=self._next_id("sched"),
            name=name,
            scheduled_at=dt.datetime.now(dt.timezone.utc),
            payload=payload,
        )


def _settle(value: Any) -> Any:
    # A transport method of an async entry (the Worker's) returns a coroutine.
    if inspect.isawaitable(value):
        from polyserve._aio import run_sync

        return run_sync(value)  # type: ignore[arg-type]
    return value


async def _asettle(call: Callable[..., Any], *args: Any) -> Any:
    # Synchronous entries (Azure's, functions-framework's) run their own event loop for
    # async handlers, so they run on a worker thread, as their hosts run them.
    value = await asyncio.to_thread(call, *args)
    if inspect.isawaitable(value):
        value = await value
    return value


def _pair(record: tuple[str, object]) -> tuple[str, object]:
    return record


def _item_id(record: tuple[str, object]) -> str:
    return str(getattr(record[1], "id", ""))


class TestClient(_Base):
    """Drive ``app`` from a test, synchronously (see the module's documentation)."""

    __test__ = False

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        content: _Body = None,
        json: Any = None,
    ) -> TestResponse:
        """Send one request through the app and return its answer (never raises for 4xx/5xx)."""
        request = self._request(
            method, path, params=params, headers=headers, cookies=cookies, body=content, json=json
        )
        if self.provider == "aws":
            return self._answer(self._aws_http(request))
        if self.provider is not None:
            return self._answer(_settle(self._provider().http(request)))
        return self._answer(self.app.handle_http(request, self._context()))

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)

    def _batch(self, trigger: Trigger, events: list[tuple[str, object]]) -> BatchResult:
        return self.app.handle_batch(
            trigger, events, self._context(), decode=_pair, item_id=_item_id
        )

    def queue(
        self,
        name: str,
        body: _Body = None,
        *,
        attempt: int = 1,
        attributes: Mapping[str, str] | None = None,
    ) -> BatchResult:
        """Deliver one message to queue ``name``: the result lists it succeeded, failed or set aside.

        ``queue_native`` sends it through the provider's entry instead.
        """
        return self._batch(Trigger.QUEUE, [(name, self._message(name, body, attempt, attributes))])

    def queue_native(self, name: str, body: _Body = None, **overrides: Any) -> Any:
        """Deliver one message through the provider's entry; return its native answer.

        ``overrides`` are the provider's builder keywords (``message_id``, ``attempt``, ...).
        The answer is the Lambda batch response, the settled Workers ``FakeBatch``, or
        ``None`` on Azure and Google Cloud, where a failed handler raises instead.
        """
        if self.provider != "aws":
            return _settle(self._native_event("queue", name, body, overrides))
        from polyserve_aws.testing import (  # type: ignore[import-not-found,unused-ignore]
            LambdaContext,
            build,
        )

        event = build("sqs", body=body if body is not None else "", queue=name, **overrides)
        return self._aws()(event, LambdaContext(self._next_id("req")))

    def schedule_native(self, name: str, **overrides: Any) -> Any:
        """Fire schedule ``name`` through the provider's entry (EventBridge, Timer, Cloud
        Scheduler, Cron Trigger); return its native answer, raising what the handler raised."""
        if self.provider == "aws":
            return self.event_native("schedule", name=name, **overrides)
        return _settle(self._native_event("schedule", name, overrides))

    def event_native(self, kind: str, **overrides: Any) -> Any:
        """Deliver the provider's native ``kind`` event (see ``polyserve events``) through
        its entry; return the native answer, raising what the handler raised."""
        if self.provider == "aws":
            from polyserve_aws.testing import (  # type: ignore[import-not-found,unused-ignore]
                LambdaContext,
                build,
            )

            return self._aws()(build(kind, **overrides), LambdaContext(self._next_id("req")))
        return _settle(self._native_event("deliver", kind, overrides))

    def topic(self, name: str, body: _Body = None, *, attempt: int = 1) -> BatchResult:
        """Deliver one message published to topic ``name``."""
        return self._batch(Trigger.TOPIC, [(name, self._message(name, body, attempt, None))])

    def stream(self, name: str, *records: object) -> BatchResult:
        """Deliver ``StreamRecord`` values, in order, to stream ``name``."""
        return self.app.handle_batch(
            Trigger.STREAM,
            [(name, r) for r in records],
            self._context(),
            decode=_pair,
            item_id=_item_id,
            ordered=True,
        )

    def schedule(self, name: str, payload: Any = None) -> Any:
        """Fire schedule ``name`` now; return what its handler returned."""
        return self.app.handle_event(
            Trigger.SCHEDULE, name, self._schedule(name, payload), self._context()
        )

    def storage(
        self,
        name: str,
        key: str,
        *,
        action: StorageAction | str = StorageAction.CREATED,
        size: int | None = None,
    ) -> Any:
        """Report that object ``key`` changed in bucket ``name``; return the handler's result."""
        event = self._storage(name, key, action, size)
        return self.app.handle_event(Trigger.STORAGE, name, event, self._context())

    def cloudevent(
        self,
        name: str,
        data: Any = None,
        *,
        type: str = "com.example.event",
        source: str = "/test",
        subject: str | None = None,
    ) -> Any:
        """Deliver a CloudEvent to registration ``name``; return the handler's result."""
        event = self._cloudevent(type, source, data, subject)
        return self.app.handle_event(Trigger.CLOUDEVENT, name, event, self._context())


class AsyncTestClient(_Base):
    """``TestClient`` for async tests: every method is a coroutine."""

    __test__ = False

    async def __aenter__(self) -> AsyncTestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        content: _Body = None,
        json: Any = None,
    ) -> TestResponse:
        """Send one request through the app and return its answer."""
        request = self._request(
            method, path, params=params, headers=headers, cookies=cookies, body=content, json=json
        )
        if self.provider == "aws":
            return self._answer(self._aws_http(request))
        if self.provider is not None:
            return self._answer(await _asettle(self._provider().http, request))
        return self._answer(await self.app.handle_http_async(request, self._context()))

    async def get(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("DELETE", path, **kwargs)

    async def queue(
        self,
        name: str,
        body: _Body = None,
        *,
        attempt: int = 1,
        attributes: Mapping[str, str] | None = None,
    ) -> BatchResult:
        """Deliver one message to queue ``name``."""
        message = self._message(name, body, attempt, attributes)
        return await self.app.handle_batch_async(
            Trigger.QUEUE, [(name, message)], self._context(), decode=_pair, item_id=_item_id
        )

    async def queue_native(self, name: str, body: _Body = None, **overrides: Any) -> Any:
        """``TestClient.queue_native``, for async tests (Azure, Google Cloud, Cloudflare)."""
        return await _asettle(self._native_event, "queue", name, body, overrides)

    async def schedule_native(self, name: str, **overrides: Any) -> Any:
        """``TestClient.schedule_native``, for async tests (Azure, Google Cloud, Cloudflare)."""
        return await _asettle(self._native_event, "schedule", name, overrides)

    async def event_native(self, kind: str, **overrides: Any) -> Any:
        """``TestClient.event_native``, for async tests (Azure, Google Cloud, Cloudflare)."""
        return await _asettle(self._native_event, "deliver", kind, overrides)

    async def schedule(self, name: str, payload: Any = None) -> Any:
        """Fire schedule ``name`` now; return what its handler returned."""
        return await self.app.handle_event_async(
            Trigger.SCHEDULE, name, self._schedule(name, payload), self._context()
        )

    async def storage(
        self,
        name: str,
        key: str,
        *,
        action: StorageAction | str = StorageAction.CREATED,
        size: int | None = None,
    ) -> Any:
        """Report that object ``key`` changed in bucket ``name``."""
        event = self._storage(name, key, action, size)
        return await self.app.handle_event_async(Trigger.STORAGE, name, event, self._context())

    async def cloudevent(
        self,
        name: str,
        data: Any = None,
        *,
        type: str = "com.example.event",
        source: str = "/test",
        subject: str | None = None,
    ) -> Any:
        """Deliver a CloudEvent to registration ``name``."""
        event = self._cloudevent(type, source, data, subject)
        return await self.app.handle_event_async(Trigger.CLOUDEVENT, name, event, self._context())
