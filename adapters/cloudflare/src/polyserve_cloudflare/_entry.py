"""The entry points a Python Worker's main module exposes: a class, or module-level handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

from polyserve_cloudflare._worker import Worker

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from polyserve.app import App
    from polyserve.identity import HeaderTrust
    from polyserve_cloudflare.types import JsRuntime

__all__ = ["Entrypoint", "Handlers", "entrypoint", "handlers"]


class Entrypoint:
    """The methods of every class ``entrypoint()`` makes.

    The runtime creates one instance per invocation with ``(ctx, env)`` and calls
    ``fetch(request)``, ``scheduled(controller, env, ctx)``,
    ``queue(batch, env, ctx)``, ``email(message, env, ctx)`` or ``tail(events, env, ctx)``;
    the last two have no typed trigger and go to the app's ``@app.native()`` handler. ``self.env`` and ``self.ctx`` are preferred over the
    ``env`` and ``ctx`` arguments: the runtime wraps ``self.env`` so that bindings
    work from Python.
    """

    env: Any
    ctx: Any
    _polyserve_worker: ClassVar[Worker]

    def __init__(self, ctx: Any = None, env: Any = None) -> None:
        # The next class in the MRO is the runtime's WorkerEntrypoint (or PlainEntrypoint),
        # which stores ctx and env; it is only known when entrypoint() runs.
        init: Any = super().__init__
        init(ctx, env)

    async def fetch(self, request: Any) -> Any:
        """Answer an HTTP request: a JavaScript ``Response``."""
        return await self._polyserve_worker.fetch(request, self.env, self.ctx)

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        """Run the schedule whose cron expression fired."""
        await self._polyserve_worker.scheduled(controller, *self._pick(env, ctx))

    async def queue(self, batch: Any, env: Any = None, ctx: Any = None) -> None:
        """Handle a batch of queue messages, acknowledging or retrying each one."""
        # Returns nothing: the runtime would try to convert a return value to JavaScript.
        await self._polyserve_worker.queue(batch, *self._pick(env, ctx))

    async def email(self, message: Any, env: Any = None, ctx: Any = None) -> Any:
        """Hand an Email Routing message (``ForwardableEmailMessage``) to ``@app.native()``."""
        return await self._polyserve_worker.native("email", message, *self._pick(env, ctx))

    async def tail(self, events: Any, env: Any = None, ctx: Any = None) -> Any:
        """Hand a Tail Worker's trace items to ``@app.native()``."""
        return await self._polyserve_worker.native("tail", events, *self._pick(env, ctx))

    def _pick(self, env: Any, ctx: Any) -> tuple[Any, Any]:
        return (
            env if self.env is None else self.env,
            ctx if self.ctx is None else self.ctx,
        )


def entrypoint(
    app: App,
    *,
    names: Mapping[str, str] | None = None,
    function_name: str | None = None,
    http_timeout: float | None = 30.0,
    event_timeout: float | None = 900.0,
    retry_delay: int | None = None,
    runtime: JsRuntime | None = None,
    identity_headers: Mapping[str, HeaderTrust] | None = None,
) -> type[Entrypoint]:
    """A ``WorkerEntrypoint`` class that runs ``app``; bind it as ``Default`` in the main module.

    ``Default = entrypoint(app)`` in ``worker.py`` (``main`` in the Wrangler file) is
    the whole Worker: the runtime calls its ``fetch``, ``scheduled`` and ``queue``
    (and ``email`` and ``tail``, which go to ``@app.native()``).
    The class derives from the runtime's ``workers.WorkerEntrypoint`` when that is
    importable (inside Pyodide), else from a plain base with the same constructor.

    Args:
        app: the application.
        names: native source -> logical name: a queue's name, or a cron expression,
            to the name its handler was registered with.
        function_name: ``Context.function_name``; defaults to ``app.name``.
        http_timeout: the wall-clock budget of a request, for ``Context.deadline``
            (Cloudflare limits CPU time, not wall-clock time); ``None``: no deadline.
        event_timeout: the same for queue batches and cron runs (Cloudflare allows
            them 15 minutes of wall-clock time).
        retry_delay: seconds before a retried message is redelivered; ``None`` uses
            the queue's configured ``retry_delay``.
        runtime: how JavaScript values are created; defaults to Pyodide's ``js``
            module. Pass another ``JsRuntime`` to run the class outside Pyodide.
        identity_headers: ``{"access": verifier}`` (or ``True``) reads
            ``Context.principal`` from Cloudflare Access's ``Cf-Access-*`` headers;
            off by default, since a request Access does not cover can carry forged
            ones (see ``polyserve_cloudflare._identity``).

    Raises:
        ConfigurationError: a timeout is not positive, ``retry_delay`` is outside
            0..86400, two schedules share one cron expression, or ``identity_headers``
            names an unknown source or holds a wrong value.
    """
    from polyserve_cloudflare._js import entrypoint_base

    worker = Worker(
        app,
        names=names,
        function_name=function_name,
        http_timeout=http_timeout,
        event_timeout=event_timeout,
        retry_delay=retry_delay,
        runtime=runtime,
        identity_headers=identity_headers,
    )
    namespace: dict[str, Any] = {
        "_polyserve_worker": worker,
        "__qualname__": "Default",
        "__doc__": f"The Worker entry point of {app.name!r}.",
    }
    # The runtime looks the class up by its __name__, and treats "Default" as the
    # Worker's default export.
    cls = type("Default", (Entrypoint, entrypoint_base()), namespace)
    return cast("type[Entrypoint]", cls)


class Handlers(NamedTuple):
    """Module-level handlers, for Workers that still use them (see ``handlers``)."""

    on_fetch: Callable[..., Coroutine[Any, Any, Any]]
    on_scheduled: Callable[..., Coroutine[Any, Any, None]]
    on_queue: Callable[..., Coroutine[Any, Any, None]]


def handlers(
    app: App,
    *,
    names: Mapping[str, str] | None = None,
    function_name: str | None = None,
    http_timeout: float | None = 30.0,
    event_timeout: float | None = 900.0,
    retry_delay: int | None = None,
    runtime: JsRuntime | None = None,
    identity_headers: Mapping[str, HeaderTrust] | None = None,
) -> Handlers:
    """``on_fetch``, ``on_scheduled`` and ``on_queue`` functions that run ``app``.

    For Workers whose compatibility settings still use module-level handlers
    (a compatibility date before 2025-08-14, or the
    ``disable_python_no_global_handlers`` flag)::

        on_fetch, on_scheduled, on_queue = handlers(app)

    Each takes the runtime's ``(event, env, ctx)``. Arguments and errors are those
    of ``entrypoint``.
    """
    worker = Worker(
        app,
        names=names,
        function_name=function_name,
        http_timeout=http_timeout,
        event_timeout=event_timeout,
        retry_delay=retry_delay,
        runtime=runtime,
        identity_headers=identity_headers,
    )

    async def on_fetch(request: Any, env: Any = None, ctx: Any = None) -> Any:
        return await worker.fetch(request, env, ctx)

    async def on_scheduled(controller: Any, env: Any = None, ctx: Any = None) -> None:
        await worker.scheduled(controller, env, ctx)

    async def on_queue(batch: Any, env: Any = None, ctx: Any = None) -> None:
        await worker.queue(batch, env, ctx)

    return Handlers(on_fetch, on_scheduled, on_queue)
