"""The application: handlers registered once, dispatched for every provider.

Adapters call four methods and nothing else: ``handle_http`` (or
``handle_http_async``) for requests, ``handle_event`` (or ``handle_event_async``)
for single events, ``handle_batch`` for batches of records, and ``resolve`` to
check that a handler exists. An ``App`` is also an ASGI application, so any ASGI
server can host it locally.
"""

from __future__ import annotations

from polyserve.errors import ConfigurationError, UnsupportedEventError
from polyserve.routing import Registration, Router, Trigger

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from typing import Any, TypeVar

    from polyserve._dispatch import HttpDispatch
    from polyserve.batch import BatchResult, Call
    from polyserve.binding import Binder
    from polyserve.context import Context
    from polyserve.cors import CORS
    from polyserve.events.http import HttpRequest, HttpResponse

    R = TypeVar("R")

__all__ = ["App", "error_response", "problem"]


class App(Router):
    """A set of portable handlers.

    Args:
        name: the app's name, used as the default function name and in logs.
        cors: CORS settings, or ``None`` to send no CORS headers.
        max_body_size: the largest request body accepted, in bytes (larger: 413).
        batch_deadline_margin: seconds before the invocation's deadline at which a
            batch stops starting records and reports the rest failed, for redelivery.

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
    ) -> None:
        super().__init__()
        if batch_deadline_margin < 0:
            raise ConfigurationError(
                f"batch_deadline_margin must not be negative, got {batch_deadline_margin}"
            )
        self.name = name
        self.cors = cors
        self.max_body_size = max_body_size
        self.batch_deadline_margin = batch_deadline_margin
        self._binders: dict[tuple[Callable[..., Any], tuple[str, ...]], Binder] = {}
        self._http: HttpDispatch | None = None
        self._resolved: dict[tuple[Trigger, str, str | None], tuple[Registration, Binder]] = {}
        # (trigger, name, event class) -> the handler itself, where it takes just the event.
        self._plain_calls: dict[tuple[Trigger, str, type], Callable[[Any], Any]] = {}

    def __repr__(self) -> str:
        counts = f"routes={len(self.routes)}, registrations={len(self.registrations)}"
        return f"App({self.name!r}, {counts})"

    # -- HTTP -----------------------------------------------------------------

    def handle_http(self, request: HttpRequest, context: Context) -> HttpResponse:
        """Answer ``request``. Never raises: every error becomes an HTTP error response.

        Return values render as: ``HttpResponse`` as is; ``dict``, ``list``, a pydantic
        model or a dataclass as JSON; ``str`` as text; ``bytes`` as binary; ``None`` as
        204 (or the route's status).
        """
        return (self._http or self._http_dispatch()).handle(request, context)

    async def handle_http_async(self, request: HttpRequest, context: Context) -> HttpResponse:
        """Answer ``request`` from async code. Sync handlers run in a worker thread."""
        return await (self._http or self._http_dispatch()).handle_async(request, context)

    def _http_dispatch(self) -> HttpDispatch:
        # Imported with the first request: it needs the event classes, which a cold
        # start should not pay for while the app is being built.
        from polyserve._dispatch import HttpDispatch

        http = self._http = HttpDispatch(self)
        # From now on app.handle_http is the dispatcher's own method: an instance
        # attribute found before the class's, which saves a call on every request.
        self.__dict__["handle_http"] = http.handle
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
        platform acknowledges it. When the hook raises, or there is none, the
        handler's exception propagates as usual.

        Raises:
            UnsupportedEventError: no handler is registered for ``trigger`` and ``name``.
            EventValidationError: the payload does not match the handler's declared type.
            Exception: whatever the handler raised, unchanged, so the platform retries
                (``Retry`` included).
        """
        result, _ = self._run_event(trigger, name, event, context)
        return result

    async def handle_event_async(
        self, trigger: Trigger, name: str, event: object, context: Context
    ) -> Any:
        """``handle_event`` for async code; sync handlers and hooks run in a worker thread."""
        result, _ = await self._run_event_async(trigger, name, event, context)
        return result

    def _run_event(
        self, trigger: Trigger, name: str, event: object, context: Context
    ) -> tuple[Any, bool]:
        # Returns (result, set_aside); set_aside is True when on_poison took the event.
        reg, binder = self._prepare_event(trigger, name, event)
        try:
            result = reg.endpoint(**binder.event_kwargs(event, context))
            return (_run_sync(result) if binder.is_async else result), False
        except Exception as exc:
            hook = _poison_hook(reg, event, context)
            # A bare raise re-raises the handler's exception untouched: the platform
            # keeps the message unless the hook took it.
            if hook is None or not _set_aside(hook, reg, event, exc, context):
                raise
            return None, True

    async def _run_event_async(
        self, trigger: Trigger, name: str, event: object, context: Context
    ) -> tuple[Any, bool]:
        reg, binder = self._prepare_event(trigger, name, event)
        try:
            kwargs = binder.event_kwargs(event, context)
            if binder.is_async:
                return await reg.endpoint(**kwargs), False
            return await _to_thread(reg.endpoint, kwargs), False
        except Exception as exc:
            hook = _poison_hook(reg, event, context)
            if hook is None or not await _set_aside_async(hook, reg, event, exc, context):
                raise
            return None, True

    def _prepare_event(
        self, trigger: Trigger, name: str, event: object
    ) -> tuple[Registration, Binder]:
        # Storage events are resolved by their action too; no other event has one.
        action_of = getattr(event, "action", None)
        action: str | None = action_of.value if action_of is not None else None
        key = (trigger, name, action)
        prepared = self._resolved.get(key)
        if prepared is None:
            reg = self.resolve(trigger, name, action)
            # Built outside the handler's try block: a handler whose type hints cannot
            # be resolved is a set-up error, never a poison message.
            prepared = self._resolved[key] = (reg, self._binder(reg.endpoint, (), http=False))
        return prepared

    def register(
        self, trigger: Trigger, name: str, endpoint: Callable[..., Any], **options: Any
    ) -> Registration:
        # A new registration may change what a name resolves to.
        self._resolved.clear()
        self._plain_calls.clear()
        return super().register(trigger, name, endpoint, **options)

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
    ) -> BatchResult:
        """Handle each record on its own and report which failed, so only those are redelivered.

        ``decode`` turns a native record into ``(logical name, event)``; a record it
        cannot decode fails alone. An adapter that decodes a whole batch at once passes
        ``decoded`` instead: one ``(name, event)`` pair per record, or the exception
        that kept that record from being decoded. With ``ordered`` (FIFO queues, streams), the first
        failure stops the batch and it and every record after it are reported failed.
        Poison messages that ``on_poison`` took are in ``BatchResult.set_aside``.
        When ``context`` has less than ``batch_deadline_margin`` seconds left, the
        records not yet started are reported failed (see ``polyserve.batch``).
        """

        def resolve(name: str, event: Any) -> Call:
            return self._event_call(trigger, name, event, context)

        return (_run_batch or _load_run_batch())(
            records, resolve, context, decode=decode, decoded=decoded, item_id=item_id,
            ordered=ordered, deadline_margin=self.batch_deadline_margin,
        )  # fmt: skip

    def _event_call(self, trigger: Trigger, name: str, event: object, context: Context) -> Call:
        # The handler for events like ``event`` from ``name``, as a function of the event,
        # and the hook that decides whether a failed one is set aside as poison.
        key = (trigger, name, event.__class__)
        plain = self._plain_calls.get(key)
        if plain is not None:
            return plain, None
        reg, binder = self._prepare_event(trigger, name, event)
        if getattr(event, "action", None) is not None:
            # Storage events resolve by their action too: no shortcut for those.
            def each(event: object) -> Any:
                from polyserve.batch import SET_ASIDE

                result, set_aside = self._run_event(trigger, name, event, context)
                return SET_ASIDE if set_aside else result

            return each, None
        call = binder.event_caller(reg.endpoint, event, context)
        if reg.options.get("max_attempts") is None:
            if call is reg.endpoint:  # needs no context: kept for later batches
                self._plain_calls[key] = call
            return call, None

        def on_failure(event: object, exc: Exception) -> bool:
            hook = _poison_hook(reg, event, context)
            return hook is not None and _set_aside(hook, reg, event, exc, context)

        return call, on_failure

    async def handle_batch_async(
        self,
        trigger: Trigger,
        records: Sequence[R],
        context: Context,
        *,
        decode: Callable[[R], tuple[str, object]],
        item_id: Callable[[R], str],
        ordered: bool = False,
    ) -> BatchResult:
        """``handle_batch`` for async code."""
        from polyserve.batch import SET_ASIDE, process_batch_async

        async def run(name: str, event: object) -> Any:
            result, set_aside = await self._run_event_async(trigger, name, event, context)
            return SET_ASIDE if set_aside else result

        return await process_batch_async(
            records, run, context, decode=decode, item_id=item_id, ordered=ordered,
            deadline_margin=self.batch_deadline_margin,
        )  # fmt: skip

    # -- shared ---------------------------------------------------------------

    def _binder(
        self, fn: Callable[..., Any], path_params: tuple[str, ...], *, http: bool
    ) -> Binder:
        key = (fn, path_params)
        binder = self._binders.get(key)
        if binder is None:
            # Imported on first use: binding needs inspect and typing machinery
            # that a cold start should not pay for before the first request.
            from polyserve.binding import Binder

            binder = self._binders[key] = Binder(fn, path_params=path_params, http=http)
        return binder

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        """ASGI entry point: ``uvicorn module:app`` serves the app locally."""
        from polyserve.asgi import serve

        await serve(self, scope, receive, send)


_run_batch: Callable[..., BatchResult] | None = None


def _load_run_batch() -> Callable[..., BatchResult]:
    # polyserve.batch is imported with the first batch; an import statement would
    # cost more than the rest of handle_batch on every later one.
    global _run_batch
    from polyserve.batch import run_batch

    _run_batch = run_batch
    return run_batch


def _run_sync(coro: Any) -> Any:
    from polyserve._aio import run_sync

    return run_sync(coro)


async def _to_thread(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    import asyncio  # already loaded: this only runs inside an event loop

    return await asyncio.to_thread(fn, **kwargs)


def _poison_hook(reg: Registration, event: object, context: Context) -> Callable[..., Any] | None:
    """The ``on_poison`` hook to call for a failed ``event`` on its last attempt, if any.

    With ``max_attempts`` and no hook, the poison message is logged and keeps
    failing, so the platform's own redelivery and dead-letter policy decide.
    """
    max_attempts = reg.options.get("max_attempts")
    attempt = getattr(event, "attempt", None)
    if max_attempts is None or not isinstance(attempt, int) or attempt < max_attempts:
        return None
    hook: Callable[..., Any] | None = reg.options.get("on_poison")
    if hook is None:
        context.logger.error(
            "poison message keeps failing; left to the platform's redelivery policy",
            message_id=getattr(event, "id", None), attempt=attempt, max_attempts=max_attempts,
            trigger=reg.trigger.value, name=reg.name,
        )  # fmt: skip
    return hook


def _set_aside(
    hook: Callable[..., Any], reg: Registration, event: object, exc: Exception, context: Context
) -> bool:
    """Give a poison ``event`` to ``hook``; True when the hook returned (the event is set aside)."""
    import inspect  # only poison messages get here

    try:
        outcome = hook(event, exc, context)
        if inspect.isawaitable(outcome):
            _run_sync(outcome)
    except Exception as hook_exc:
        _hook_failed(event, hook_exc, context)
        return False
    _log_set_aside(reg, event, exc, context)
    return True


async def _set_aside_async(
    hook: Callable[..., Any], reg: Registration, event: object, exc: Exception, context: Context
) -> bool:
    """``_set_aside`` from async code: a sync hook runs in a worker thread, like a handler."""
    import asyncio  # already loaded: this only runs inside an event loop
    import inspect

    try:
        if inspect.iscoroutinefunction(hook):
            await hook(event, exc, context)
        else:
            outcome = await asyncio.to_thread(hook, event, exc, context)
            if inspect.isawaitable(outcome):
                await outcome
    except Exception as hook_exc:
        _hook_failed(event, hook_exc, context)
        return False
    _log_set_aside(reg, event, exc, context)
    return True


def _log_set_aside(reg: Registration, event: object, exc: Exception, context: Context) -> None:
    context.logger.warning(
        "poison message set aside",
        message_id=getattr(event, "id", None), attempt=getattr(event, "attempt", None),
        max_attempts=reg.options.get("max_attempts"), trigger=reg.trigger.value,
        name=reg.name, error_type=type(exc).__name__,
    )  # fmt: skip


def _hook_failed(event: object, exc: Exception, context: Context) -> None:
    context.logger.error(
        "on_poison failed; the message stays failed", exc=exc, message_id=getattr(event, "id", None)
    )


def error_response(exc: Exception, context: Context) -> HttpResponse:
    """The HTTP answer for ``exc``, as the app gives it; adapters use it for events they reject.

    A polyserve error with a 4xx status (or one marked ``is_exposed``) shows its
    ``code`` and ``detail``; anything else becomes a generic 500 carrying only the
    invocation id, and its traceback goes to the log.
    """
    from polyserve import _dispatch

    return _dispatch.error_response(exc, context)


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
