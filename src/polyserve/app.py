"""The application: handlers registered once, run for every provider.

Adapters call the entry points: ``handle_http`` (or ``handle_http_async``) for
requests, ``handle_event`` (or ``handle_event_async``) for single events,
``handle_batch`` (or ``handle_batch_async``) for batches of records, and
``resolve`` to check that a handler exists. Every invocation goes through the
pipeline (``polyserve.pipeline``): middleware, dependencies, the handler, and
exception handlers. An ``App`` is also an ASGI application, so any ASGI server
can host it locally.
"""

from __future__ import annotations

import os as _os

from polyserve.errors import ConfigurationError, UnsupportedEventError
from polyserve.pipeline import Invocation, Middleware, run
from polyserve.routing import Registration, Router, Trigger

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from typing import Any, TypeVar

    from polyserve._events import EventDispatch
    from polyserve._http import HttpDispatch
    from polyserve.batch import BatchResult
    from polyserve.context import Context
    from polyserve.cors import CORS
    from polyserve.dependencies import Resolver
    from polyserve.events.http import HttpRequest, HttpResponse
    from polyserve.mount import ASGIApp, Mount
    from polyserve.outbound import Bucket, Queue, Topic
    from polyserve.params import Dependency
    from polyserve.pipeline import ExceptionHandler
    from polyserve.tracing import TraceContext

    R = TypeVar("R")

__all__ = ["App", "error_response", "problem"]

# The values of ``POLYSERVE_DOCS`` that turn the docs routes on.
_ON = ("1", "true", "yes")


class App(Router):
    """A set of portable handlers, and the middleware, dependencies and exception handlers
    around them.

    Args:
        name: the app's name, used as the default function name and in logs.
        cors: CORS settings, or ``None`` to send no CORS headers.
        max_body_size: the largest request body accepted, in bytes (larger: 413).
        batch_deadline_margin: seconds before the invocation's deadline at which a
            batch stops starting records and reports the rest failed, for redelivery.
        middleware: app middleware, first outermost; also added with ``@app.middleware``.
            For HTTP they run before routing, so they see every request (404s too).
        dependencies: resolved before every handler runs, for their effect.
        docs: serve ``GET /openapi.json`` and the API docs page ``/docs`` (see
            ``polyserve.docs``); ``None`` (the default) serves them only when the
            ``POLYSERVE_DOCS`` environment variable is ``1``, as ``polyserve serve`` sets it.

    ``dependency_overrides`` maps a provider to a replacement, for tests:
    ``app.dependency_overrides[database] = lambda: FakeDatabase()``.

    Raises:
        ConfigurationError: ``batch_deadline_margin`` is negative.
    """

    def __init__(
        self,
        name: str,
        *,
        cors: CORS | None = None,
        max_body_size: int = 6 * 1024 * 1024,
        batch_deadline_margin: float = 1.0,
        middleware: Iterable[Middleware | Callable[..., Any]] = (),
        dependencies: Iterable[Dependency] = (),
        docs: bool | None = None,
    ) -> None:
        super().__init__(middleware=middleware, dependencies=dependencies)
        if batch_deadline_margin < 0:
            raise ConfigurationError(
                f"batch_deadline_margin must not be negative, got {batch_deadline_margin}"
            )
        self.name = name
        self.cors = cors
        self.max_body_size = max_body_size
        self.batch_deadline_margin = batch_deadline_margin
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._resolver: Resolver | None = None
        self._http: HttpDispatch | None = None
        self._events: EventDispatch | None = None
        self._mounts: list[Mount] = []
        if docs or (docs is None and _os.environ.get("POLYSERVE_DOCS", "").lower() in _ON):
            from polyserve.docs import mount

            mount(self)

    def __repr__(self) -> str:
        counts = f"routes={len(self.routes)}, registrations={len(self.registrations)}"
        return f"App({self.name!r}, {counts})"

    # -- extensions -----------------------------------------------------------

    @property
    def resolver(self) -> Resolver:
        """Binds handlers and resolves their dependencies (built with the first invocation)."""
        resolver = self._resolver
        if resolver is None:
            # Binding needs inspect and typing machinery that a cold start should not
            # pay for while the app is being built.
            from polyserve.dependencies import ProcessScope, Resolver

            resolver = self._resolver = Resolver(self.dependency_overrides, ProcessScope())
        return resolver

    def middleware_stack(self) -> tuple[Middleware, ...]:
        """The app's own middleware, first outermost."""
        return tuple(self._middleware)

    def dependency_stack(self) -> tuple[Dependency, ...]:
        """The app's own dependencies, resolved before every handler."""
        return tuple(self._dependencies)

    @property
    def exception_handlers(self) -> Mapping[type[BaseException], ExceptionHandler]:
        """The app's exception handlers, by exception class."""
        return self._exception_handlers

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Add every handler of ``router`` (see ``Router.include_router``)."""
        super().include_router(router, prefix)
        self._changed()

    def _add_registration(self, reg: Registration) -> None:
        # A new registration may change what a name resolves to.
        self._events = None
        super()._add_registration(reg)

    def _changed(self) -> None:
        # Plans hold the middleware and handlers they were built with: start again.
        self._http = None
        self._events = None

    def openapi(self, *, title: str | None = None, version: str = "0.1.0") -> dict[str, Any]:
        """The OpenAPI 3.1 document of the app's routes (see ``polyserve.openapi``)."""
        from polyserve.openapi import openapi_document

        return openapi_document(self, title=title, version=version)

    # -- Outbound -------------------------------------------------------------

    def queue_out(self, name: str, *, target: str | None = None) -> Queue:
        """The queue ``name`` to send to: the one ``@app.queue(name)`` consumes.

        ``target`` (a queue URL, ``namespace/entity``, ``project/topic`` or binding
        name) overrides the one configured for the name; see ``polyserve.outbound``.
        """
        from polyserve.outbound import Queue

        return Queue(name, target=target)

    def topic_out(self, name: str, *, target: str | None = None) -> Topic:
        """The topic or event bus ``name`` to publish to: the one ``@app.topic(name)`` consumes."""
        from polyserve.outbound import Topic

        return Topic(name, target=target)

    def bucket(self, name: str, *, target: str | None = None) -> Bucket:
        """The bucket ``name`` to store objects in: the one ``@app.storage(name)`` watches."""
        from polyserve.outbound import Bucket

        return Bucket(name, target=target)

    # -- HTTP -----------------------------------------------------------------

    def mount(self, prefix: str, asgi_app: ASGIApp) -> None:
        """Serve the requests under ``prefix`` that no route of this app takes with ``asgi_app``.

        ``asgi_app`` is any ASGI 3 application: FastAPI, Starlette, Django's ASGI
        handler. A request goes to it when its path is ``prefix`` or below it and
        no polyserve route answers its method and path: polyserve's own routes take
        precedence where both match. Among mounts, the longest prefix wins. The
        app's middleware run around the mounted app as around any handler; inside
        it, ``polyserve.mount.context_of(request)`` is the invocation's ``Context``.
        Its lifespan starts with the first request it gets (see ``polyserve.mount``).

        Raises:
            ConfigurationError: ``prefix`` does not start with ``/``, ``asgi_app`` is
                not callable, or another app is mounted at the same prefix.
        """
        from polyserve.mount import Mount

        mount = Mount(prefix, asgi_app)
        if any(m.prefix == mount.prefix for m in self._mounts):
            raise ConfigurationError(f"an ASGI app is mounted at {prefix!r} already")
        self._mounts.append(mount)
        self._mounts.sort(key=lambda m: len(m.prefix), reverse=True)
        self._changed()

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """The mounted ASGI apps, longest prefix first."""
        return tuple(self._mounts)

    def handle_http(
        self, request: HttpRequest, context: Context, *, stream: bool = False
    ) -> HttpResponse:
        """Answer ``request``. Never raises: every error becomes an HTTP error response.

        Return values render as: ``HttpResponse`` as is; ``dict``, ``list``, a pydantic
        model or a dataclass as JSON; ``str`` as text; ``bytes`` as binary; an
        iterator or async iterator of ``bytes`` as a stream; ``None`` as 204 (or the
        route's status).

        A streamed body (see ``polyserve.streaming``) is read whole before this
        returns, unless ``stream`` is true: then a ``StreamingResponse`` comes back,
        for an adapter that sends its chunks as they come.
        """
        inv = Invocation(context, is_blocking=True)
        if stream:
            return run(self._http_dispatch().serve(request, inv, stream=True))
        return run(self._http_dispatch().serve(request, inv))

    async def handle_http_async(
        self, request: HttpRequest, context: Context, *, offload: bool = True, stream: bool = False
    ) -> HttpResponse:
        """Answer ``request`` from async code.

        With ``offload`` (the default), sync handlers, providers and middleware run
        in a worker thread, so they never block the event loop; runtimes without
        threads (Workers) pass ``offload=False`` to run them inline. ``stream`` is
        as for ``handle_http``.
        """
        inv = Invocation(context, is_blocking=False, offload=offload)
        return await self._http_dispatch().serve(request, inv, stream=stream)

    def _http_dispatch(self) -> HttpDispatch:
        http = self._http
        if http is None:
            # Imported with the first request: it needs the event classes, which a cold
            # start should not pay for while the app is being built.
            from polyserve._http import HttpDispatch

            http = self._http = HttpDispatch(self)
        return http

    # -- other triggers -------------------------------------------------------

    def resolve(self, trigger: Trigger, name: str, action: str | None = None) -> Registration:
        """The registration for an event, or ``UnsupportedEventError`` describing what arrived."""
        reg = self.find(trigger, name, action)
        if reg is None:
            known = sorted(r.name for r in self.registrations if r.trigger is trigger)
            what = f"{trigger.value} {name!r}" + (f" ({action})" if action else "")
            raise UnsupportedEventError(
                f"no handler is registered for {what}; registered {trigger.value} names: {known}",
                description={"trigger": trigger.value, "name": name, "action": action},
            )
        return reg

    def handle_event(self, trigger: Trigger, name: str, event: object, context: Context) -> Any:
        """Run the handler registered for ``event`` and return its result.

        A message that fails on its last attempt (``event.attempt >= max_attempts``
        of its registration) goes to the registration's ``on_poison`` hook; when the
        hook returns, the message is set aside and this returns ``None``, so the
        platform acknowledges it. An event that the handler or an exception handler
        sets aside (``SetAside``) returns ``None`` too.

        Raises:
            UnsupportedEventError: no handler is registered for ``trigger`` and ``name``.
            EventValidationError: the payload does not match the handler's declared type.
            Exception: whatever the handler raised, unless an exception handler took it,
                so the platform retries (``Retry`` included).
        """
        inv = Invocation(context, is_blocking=True)
        return run(self._event_dispatch().handle(trigger, name, event, inv))

    async def handle_event_async(
        self, trigger: Trigger, name: str, event: object, context: Context, *, offload: bool = True
    ) -> Any:
        """``handle_event`` for async code (``offload`` as for ``handle_http_async``)."""
        inv = Invocation(context, is_blocking=False, offload=offload)
        return await self._event_dispatch().handle(trigger, name, event, inv)

    def handle_batch(
        self,
        trigger: Trigger,
        records: Sequence[R],
        context: Context,
        *,
        decode: Callable[[R], tuple[str, object]] | None = None,
        decoded: Sequence[tuple[str, object] | BaseException] | None = None,
        item_id: Callable[[R], str],
        ordered: bool = False,
        trace_of: Callable[[R], TraceContext | None] | None = None,
        group_of: Callable[[R], object] | None = None,
    ) -> BatchResult:
        """Handle each record on its own and report which failed, so only those are redelivered.

        ``decode`` turns a native record into ``(logical name, event)``; a record it
        cannot decode fails alone. An adapter that decodes a whole batch at once passes
        ``decoded`` instead: one ``(name, event)`` pair per record, or the exception
        that kept that record from being decoded. With ``ordered`` (FIFO queues,
        streams), the first failure stops the batch and it and every record after it
        are reported failed; with ``group_of`` too (SQS FIFO message groups), it stops
        only the later records of its own group. Events set aside (``SetAside``, ``on_poison``) are in
        ``BatchResult.set_aside``. When ``context`` has less than
        ``batch_deadline_margin`` seconds left, the records not yet started are
        reported failed (see ``polyserve.batch``). ``trace_of(record)`` reads the trace
        a record's producer sent it in, which its handler's context then continues.
        """
        inv = Invocation(context, is_blocking=True)
        return run(
            self._event_dispatch().handle_batch(
                trigger, records, inv, decode=decode, decoded=decoded, item_id=item_id,
                ordered=ordered, trace_of=trace_of, group_of=group_of,
            )
        )  # fmt: skip

    async def handle_batch_async(
        self,
        trigger: Trigger,
        records: Sequence[R],
        context: Context,
        *,
        decode: Callable[[R], tuple[str, object]] | None = None,
        decoded: Sequence[tuple[str, object] | BaseException] | None = None,
        item_id: Callable[[R], str],
        ordered: bool = False,
        trace_of: Callable[[R], TraceContext | None] | None = None,
        group_of: Callable[[R], object] | None = None,
        offload: bool = True,
    ) -> BatchResult:
        """``handle_batch`` for async code (``offload`` as for ``handle_http_async``)."""
        inv = Invocation(context, is_blocking=False, offload=offload)
        return await self._event_dispatch().handle_batch(
            trigger, records, inv, decode=decode, decoded=decoded, item_id=item_id,
            ordered=ordered, trace_of=trace_of, group_of=group_of,
        )  # fmt: skip

    def _event_dispatch(self) -> EventDispatch:
        events = self._events
        if events is None:
            from polyserve._events import EventDispatch

            events = self._events = EventDispatch(self)
        return events

    # -- process lifetime -----------------------------------------------------

    def close(self) -> None:
        """Tear down process-scoped dependencies (generator providers run their exit code)
        and send mounted ASGI apps their lifespan shutdown.

        For hosts that stop the process cleanly; the local server calls it at
        shutdown. The next invocation creates the values again.
        """
        for mount in self._mounts:
            mount.close()
        if self._resolver is not None:
            from polyserve._aio import run_sync

            run_sync(self._resolver.process.close())

    async def aclose(self) -> None:
        """``close`` from async code."""
        for mount in self._mounts:
            await mount.aclose()
        if self._resolver is not None:
            await self._resolver.process.close()

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        """ASGI entry point: ``uvicorn module:app`` serves the app locally."""
        from polyserve.asgi import serve

        await serve(self, scope, receive, send)


def error_response(exc: Exception, context: Context) -> HttpResponse:
    """The HTTP answer for ``exc``, as the app gives it; adapters use it for events they reject.

    A polyserve error with a 4xx status (or one marked ``is_exposed``) shows its
    ``code`` and ``detail``; anything else becomes a generic 500 carrying only the
    invocation id, and its traceback goes to the log.
    """
    from polyserve import _http

    return _http.error_response(exc, context)


def problem(
    status: int,
    code: str,
    detail: str,
    context: Context,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """``HttpResponse.problem`` stamped with the context's invocation id."""
    from polyserve.events.http import HttpResponse

    return HttpResponse.problem(
        status, code, detail, invocation_id=context.invocation_id, extra=extra, headers=headers
    )
