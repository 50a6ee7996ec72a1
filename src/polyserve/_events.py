"""Running event handlers for an ``App``: resolve, run the pipeline, poison messages.

Each registration gets a plan on its first event: its binder, its middleware
chain and its exception handlers. A message that fails on its last attempt
(``event.attempt >= max_attempts`` of its registration) goes to the
registration's ``on_poison`` hook; when the hook returns, the message is set
aside (acknowledged, not redelivered). When the hook raises, or there is none,
the failure stands and the platform's own redelivery policy decides.
"""

from __future__ import annotations

from polyserve.binding import Shape
from polyserve.pipeline import SetAside, chain, find_exception_handler, is_async_callable
from polyserve.routing import Trigger
from polyserve.tracing import of_event

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from polyserve.app import App
    from polyserve.batch import BatchResult
    from polyserve.binding import Binder
    from polyserve.pipeline import Invocation, Step
    from polyserve.routing import Registration
    from polyserve.tracing import TraceContext

__all__ = ["EventDispatch"]


class _Plan:
    """What running one registration takes, worked out on its first event.

    ``direct`` is the handler itself when nothing runs around it (no middleware, no
    dependencies) and it is a plain function of the event alone: a batch calls it
    with each record's event of type ``event_type`` as it is, and builds the
    record's own context only if the record fails.
    """

    __slots__ = ("binder", "direct", "event_type", "registration", "step")

    def __init__(self, registration: Registration, binder: Binder) -> None:
        self.registration = registration
        self.binder = binder
        self.step: Step
        self.direct: Callable[[Any], Any] | None = None
        self.event_type: Any = object


class EventDispatch:
    """The event half of an ``App``, built on its first event."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._plans: dict[tuple[Trigger, str, str | None], _Plan] = {}
        self._async_handlers: dict[Callable[..., Any], bool] = {}

    def plan(self, trigger: Trigger, name: str, event: object) -> _Plan:
        """The plan for ``event`` from the source ``name``.

        Raises:
            UnsupportedEventError: no handler is registered for it.
            ConfigurationError: the handler's type hints cannot be resolved.
        """
        # Storage events are resolved by their action too; no other event has one.
        action: str | None = None
        if trigger is Trigger.STORAGE:
            action_of = getattr(event, "action", None)
            action = action_of.value if action_of is not None else None
        key = (trigger, name, action)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._new_plan(self._app.resolve(trigger, name, action))
        return plan

    def _new_plan(self, reg: Registration) -> _Plan:
        app = self._app
        binder = app.resolver.binder(reg.endpoint, (), http=False)
        plan = _Plan(reg, binder)
        middleware = [m for m in (*app.middleware_stack(), *reg.middleware) if m.events]
        plan.step = chain(middleware, self._endpoint(plan), http=False)
        if (
            not middleware
            and not (*app.dependency_stack(), *reg.dependencies)
            and binder.shape is Shape.EVENT_ONLY
            and not binder.is_async
        ):
            plan.direct = reg.endpoint
            plan.event_type = binder.params[0].annotation  # object: any event
        return plan

    async def handle(self, trigger: Trigger, name: str, event: object, inv: Invocation) -> Any:
        """The handler's result for one event; ``None`` when it was set aside.

        Raises:
            UnsupportedEventError: no handler is registered for ``event``.
            Exception: the failure, so the platform redelivers (``Retry`` included).
        """
        try:
            plan = self.plan(trigger, name, event)
            _continue_trace(inv, event)
            outcome = await self._outcome(plan, event, inv)
        finally:
            if inv.has_teardowns:
                await inv.close()
        if isinstance(outcome, SetAside):
            return None
        return outcome

    async def handle_batch(
        self,
        trigger: Trigger,
        records: Sequence[Any],
        inv: Invocation,
        *,
        decode: Callable[[Any], tuple[str, object]] | None,
        decoded: Sequence[tuple[str, object] | BaseException] | None,
        item_id: Callable[[Any], str],
        ordered: bool,
        trace_of: Callable[[Any], TraceContext | None] | None = None,
        group_of: Callable[[Any], object] | None = None,
    ) -> BatchResult:
        """Run each record through its handler's pipeline (see ``polyserve.batch``).

        With ``trace_of``, each record's context continues the trace ``trace_of(record)``
        finds in it (read when first needed), else the batch's.
        """
        from polyserve.batch import run_batch

        context = inv.context
        record = inv.fork()  # restarted for each record

        async def each(name: str, event: object, native: Any) -> Any:
            plan = self.plan(trigger, name, event)
            raised = None
            if (
                plan.direct is not None
                and not record.offload
                and isinstance(event, plan.event_type)
            ):
                try:
                    return plan.direct(event)
                except Exception as exc:
                    raised = exc
            record.restart(context if trace_of is None else context.for_record(trace_of, native))
            try:
                return await self._outcome(plan, event, record, raised)
            finally:
                if record.has_teardowns:
                    await record.close()

        return await run_batch(
            records, each, inv.context, decode=decode, decoded=decoded, item_id=item_id,
            ordered=ordered, group_of=group_of, deadline_margin=self._app.batch_deadline_margin,
        )  # fmt: skip

    async def _outcome(
        self, plan: _Plan, event: object, inv: Invocation, raised: Exception | None = None
    ) -> Any:
        # The handler's result or a SetAside; raises when the event failed. ``raised``:
        # the handler, called directly (``_Plan.direct``), raised it; it is handled as
        # the endpoint handles its handler's exception.
        try:
            try:
                if raised is None:
                    return await plan.step(event, inv)
                inv.error = raised
                return await self._error(raised, event, inv, plan)
            except Exception as exc:  # a middleware raised, and no middleware caught it
                if exc is inv.error:
                    raise  # the handler's own, which no exception handler took
                return await self._error(exc, event, inv, plan)
        except Exception as exc:
            if await self._poison(plan.registration, event, exc, inv):
                return SetAside("poison message")
            raise

    def _endpoint(self, plan: _Plan) -> Step:
        resolver = self._app.resolver
        binder, reg = plan.binder, plan.registration
        fn, is_async = reg.endpoint, binder.is_async
        dependencies = (*self._app.dependency_stack(), *reg.dependencies)
        # A handler that takes just the event, of any type (``Any``) or of the
        # declared ones, is called with it directly.
        event_only = binder.shape is Shape.EVENT_ONLY and not dependencies
        expected = binder.params[0].annotation if event_only else object

        async def endpoint(event: Any, inv: Invocation) -> Any:
            try:
                if event_only and isinstance(event, expected):
                    return await inv.call(fn, is_async, event)
                for depends in dependencies:
                    await resolver.dependency(depends, event, inv, (), http=False)
                kwargs = await resolver.event_arguments(binder, event, inv)
                return await inv.call(fn, is_async, **kwargs)
            except Exception as exc:
                inv.error = exc
                return await self._error(exc, event, inv, plan)

        return endpoint

    async def _error(self, exc: Exception, event: object, inv: Invocation, plan: _Plan) -> Any:
        """What an exception handler makes of ``exc``; ``exc`` itself when none takes it."""
        handler = find_exception_handler(
            exc, plan.registration.exception_handlers, self._app.exception_handlers
        )
        if handler is None:
            raise exc
        is_async = self._async_handlers.get(handler)
        if is_async is None:
            is_async = self._async_handlers[handler] = is_async_callable(handler)
        return await inv.call(handler, is_async, exc, event, inv.context)

    async def _poison(
        self, reg: Registration, event: object, exc: Exception, inv: Invocation
    ) -> bool:
        """Whether ``event``, which failed with ``exc``, was set aside as poison."""
        max_attempts = reg.options.get("max_attempts")
        if max_attempts is None:
            return False
        context = inv.context
        try:
            attempt = getattr(event, "attempt", None)
        except Exception as read_exc:
            # Without a count the message cannot be known to be poison: it stays
            # failed, and the rest of its batch is not affected.
            context.logger.error(
                "delivery count unreadable; the message stays failed", exc=read_exc,
                message_id=_event_id(event), trigger=reg.trigger.value, name=reg.name,
            )  # fmt: skip
            return False
        if not isinstance(attempt, int) or attempt < max_attempts:
            return False
        fields = {
            "message_id": _event_id(event), "attempt": attempt, "max_attempts": max_attempts,
            "trigger": reg.trigger.value, "name": reg.name,
        }  # fmt: skip
        hook: Callable[..., Any] | None = reg.options.get("on_poison")
        if hook is None:
            context.logger.error(
                "poison message keeps failing; left to the platform's redelivery policy",
                **fields,
            )
            return False
        is_async = self._async_handlers.get(hook)
        if is_async is None:
            is_async = self._async_handlers[hook] = is_async_callable(hook)
        try:
            await inv.call(hook, is_async, event, exc, context)
        except Exception as hook_exc:
            context.logger.error(
                "on_poison failed; the message stays failed", exc=hook_exc,
                message_id=fields["message_id"],
            )  # fmt: skip
            return False
        context.logger.warning("poison message set aside", error_type=type(exc).__name__, **fields)
        return True


def _continue_trace(inv: Invocation, event: object) -> None:
    # A CloudEvent that carries its producer's trace gets a context continuing it, so
    # its log lines and spans join that trace.
    if getattr(event, "extensions", None):
        inv.context = inv.context.for_record(of_event, event)


def _event_id(event: object) -> Any:
    try:
        return getattr(event, "id", None)
    except Exception:
        return None
