"""The dispatcher behind every entry point: one Workers event in, the app's handler run."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyserve.adapter import problem, run_async, run_native_async
from polyserve.context import Context
from polyserve.errors import ConfigurationError, EventError, UnsupportedEventError
from polyserve.routing import Trigger
from polyserve_cloudflare import _http, _queue, _scheduled
from polyserve_cloudflare._identity import HEADER_SOURCES, Identity

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.app import App
    from polyserve.batch import BatchResult
    from polyserve.identity import HeaderTrust
    from polyserve_cloudflare.types import JsRuntime

__all__ = ["PROVIDER", "Worker", "WorkerContext", "current_env", "worker_env"]

PROVIDER = "cloudflare"

current_env: ContextVar[Any] = ContextVar("polyserve_cloudflare_env")
"""The ``env`` of the invocation being handled (outbound bindings are taken from it)."""


def worker_env(env: Any = None) -> Any:
    """``env`` if given, else the current invocation's, else the runtime's ``workers.env``.

    Raises:
        ConfigurationError: there is none (outside an invocation, outside Pyodide).
    """
    if env is not None:
        return env
    found = current_env.get(None)
    if found is not None:
        return found
    from polyserve_cloudflare._js import runtime_env

    found = runtime_env()
    if found is None:
        raise ConfigurationError(
            "no Worker env to take bindings from: use them from a handler the Worker's "
            "entry point runs, or pass the env explicitly"
        )
    return found


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """``Context.raw`` on Cloudflare: the Worker's ``env`` (its bindings) and its ``ctx``.

    A handler reaches a KV namespace as ``context.raw.env.MY_KV`` and keeps work
    going after the response with ``context.raw.ctx.waitUntil(promise)``.
    ``handler`` names the Worker handler the runtime called (``"fetch"``,
    ``"queue"``, ``"scheduled"``, ``"email"``, ``"tail"``), so one ``@app.native()``
    handler can tell an email from a tail batch.
    """

    env: Any
    ctx: Any
    handler: str = ""


class Worker:
    """Runs an app's handlers for the Workers runtime's ``fetch``, ``scheduled`` and ``queue``.

    See ``polyserve_cloudflare.entrypoint`` for the arguments.

    Raises:
        ConfigurationError: a timeout is not positive, ``retry_delay`` is outside
            0..86400 seconds, two schedules share one cron expression, or
            ``identity_headers`` names an unknown source or holds a wrong value.
    """

    __slots__ = (
        "_identify",
        "_runtime",
        "app",
        "event_timeout",
        "function_name",
        "http_timeout",
        "names",
        "retry_delay",
    )

    def __init__(
        self,
        app: App,
        *,
        names: Mapping[str, str] | None = None,
        function_name: str | None = None,
        http_timeout: float | None = 30.0,
        event_timeout: float | None = 900.0,
        retry_delay: int | None = None,
        runtime: JsRuntime | None = None,
        identity_headers: Mapping[str, HeaderTrust] | None = None,
    ) -> None:
        for label, timeout in (("http_timeout", http_timeout), ("event_timeout", event_timeout)):
            if timeout is not None and not timeout > 0:
                raise ConfigurationError(f"{label} must be positive or None, got {timeout!r}")
        if retry_delay is not None and not 0 <= retry_delay <= _queue.MAX_RETRY_DELAY:
            raise ConfigurationError(
                f"retry_delay must be 0..{_queue.MAX_RETRY_DELAY} seconds, got {retry_delay!r}"
            )
        _scheduled.cron_table(app)  # two schedules on one cron fail here, at set-up time
        self.app = app
        self.names: dict[str, str] = dict(names or {})
        self.function_name = function_name or app.name
        self.http_timeout = http_timeout
        self.event_timeout = event_timeout
        self.retry_delay = retry_delay
        self._runtime = runtime
        trust: Mapping[str, HeaderTrust] = {}
        if identity_headers:
            from polyserve.identity import header_trust

            trust = header_trust(identity_headers, HEADER_SOURCES)
        self._identify = Identity(trust)
        # Read at run time: a type checker would treat sys.platform as the host's constant.
        platform: str = sys.platform
        if platform == "emscripten":
            # On Workers, bindings are the way out: unless POLYSERVE_OUTBOUND names
            # another backend, app.queue_out(...) and friends send through them.
            os.environ.setdefault("POLYSERVE_OUTBOUND", "cloudflare")

    @property
    def runtime(self) -> JsRuntime:
        """The ``JsRuntime`` given, or Pyodide's (created on first use)."""
        if self._runtime is None:
            from polyserve_cloudflare._js import PyodideRuntime

            self._runtime = PyodideRuntime()
        return self._runtime

    def context(
        self, timeout: float | None, invocation_id: str, env: Any, ctx: Any, handler: str = ""
    ) -> Context:
        """A ``Context`` for one invocation; a missing ``invocation_id`` is generated."""
        if not invocation_id:
            import uuid

            invocation_id = uuid.uuid4().hex
        current_env.set(env)
        return Context.with_timeout(
            PROVIDER,
            timeout,
            invocation_id=invocation_id,
            function_name=self.function_name,
            raw=WorkerContext(env, ctx, handler),
        )

    async def fetch(self, request: object, env: Any, ctx: Any) -> Any:
        """Answer a Fetch ``Request`` (or the runtime's wrapper of one) with a ``Response``.

        Never raises for a bad request: it becomes a 4xx problem response.

        Raises:
            UnsupportedEventError: ``request`` is not a request at all.
        """
        raw = _http.native(request)
        if not _http.is_request(raw):
            raise _unsupported("fetch", "a Request", raw)
        context = self.context(self.http_timeout, _http.request_id(raw), env, ctx, "fetch")
        try:
            body = await _http.read_body(raw)
        except EventError as exc:
            context.logger.warning("request rejected", code=exc.code, detail=exc.detail)
            failure = problem(exc.status, exc.code, exc.detail, context, exc.to_dict())
            return _http.response_of(failure, self.runtime)
        fetch = _http.Fetch(raw, body, self.runtime, self._identify)
        return await run_async(self.app, _http, fetch, context, self.names, stream=True)

    async def scheduled(self, controller: object, env: Any, ctx: Any) -> None:
        """Run the schedule whose cron fired.

        Raises:
            UnsupportedEventError: no schedule matches the cron expression.
            MalformedEventError: the controller's fields are not what Cloudflare sends.
            Exception: whatever the handler raised, so the runtime records a failed run.
        """
        if not _scheduled.is_controller(controller):
            raise _unsupported("scheduled", "a ScheduledController", controller)
        context = self.context(self.event_timeout, "", env, ctx, "scheduled")
        firing = _scheduled.Firing(controller, _scheduled.cron_table(self.app))
        try:
            await run_async(self.app, _scheduled, firing, context, self.names)
        except Exception as exc:
            context.logger.exception("scheduled run failed", exc)
            raise

    async def queue(self, batch: object, env: Any, ctx: Any) -> BatchResult:
        """Handle each message of a ``MessageBatch`` on its own, then ack or retry it.

        Raises:
            UnsupportedEventError: ``batch`` is not a message batch.
            PolyserveError: code ``queue_settle_failed`` when an ``ack()`` or
                ``retry()`` call failed, so that Queues redelivers what is unsettled.
        """
        if not _queue.is_batch(batch):
            raise _unsupported("queue", "a MessageBatch", batch)
        context = self.context(self.event_timeout, "", env, ctx, "queue")
        delivery = _queue.Delivery(
            batch,
            self.runtime,
            self.retry_delay,
            storage=self._is_storage(_queue.source_name(batch, self.names)),
        )
        result: BatchResult = await run_async(self.app, _queue, delivery, context, self.names)
        return result

    async def native(self, handler: str, raw: object, env: Any, ctx: Any) -> Any:
        """Hand what a handler without a typed trigger received to ``@app.native()``.

        ``handler`` is the Worker handler the runtime called (``"email"`` with a
        ``ForwardableEmailMessage``, ``"tail"`` with a list of trace items); ``raw``
        goes to the native handler as it came, and its result comes back unchanged.

        Raises:
            UnsupportedEventError: the app has no ``@app.native("cloudflare")`` (or
                ``"*"``) handler.
            Exception: whatever the handler raised, so the runtime records a failure.
        """
        context = self.context(self.event_timeout, "", env, ctx, handler)
        unsupported = UnsupportedEventError(
            f"{handler}() events need an @app.native() handler",
            description={"handler": handler, "type": type(raw).__name__},
        )
        return await run_native_async(self.app, PROVIDER, raw, context, unsupported)

    def _is_storage(self, queue: str) -> bool:
        # R2 notifications: a queue no @app.queue consumes, in an app that has storage handlers.
        app = self.app
        if app.find(Trigger.QUEUE, queue) is not None:
            return False
        return any(reg.trigger is Trigger.STORAGE for reg in app.registrations)


def _unsupported(handler: str, expected: str, raw: object) -> UnsupportedEventError:
    return UnsupportedEventError(
        f"{handler}() expected {expected}, got {type(raw).__name__}",
        description={"handler": handler, "type": type(raw).__name__},
    )
