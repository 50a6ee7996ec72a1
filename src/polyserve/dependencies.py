"""Dependencies: the values ``Depends(provider)`` parameters receive.

For each invocation, a handler's dependencies are resolved before it is called:
each provider's own parameters are bound like a handler's (the request or event,
the context, path, query and header values, other dependencies), then it is
called, awaited if async, or entered if it is a generator, whose code after
``yield`` runs as the invocation closes. Values are cached per invocation, so a
provider that several parameters depend on runs once.

Process-scoped values (``Depends(provider, scope="process")``) live in the app's
``ProcessScope``: created on first use, under a lock so that concurrent first
invocations create one, and kept until ``App.close``.

``App.dependency_overrides`` maps a provider to its replacement, for tests; it is
read on every resolution, so an override takes effect at once.
"""

from __future__ import annotations

import _thread  # loaded with the interpreter, unlike threading

from polyserve.binding import Binder, Source
from polyserve.errors import ConfigurationError, EventValidationError, FieldError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import threading
    from collections.abc import Callable, Mapping
    from contextlib import AsyncExitStack
    from typing import Any

    from polyserve.events.http import HttpRequest
    from polyserve.params import Dependency
    from polyserve.pipeline import Invocation

__all__ = ["ProcessScope", "Resolver"]

_MISSING = object()
# Held while a scope makes its lock, so that two threads arriving at once make one.
_MAKING_LOCK = _thread.allocate_lock()


class ProcessScope:
    """The values of process-scoped providers, and their teardowns."""

    def __init__(self) -> None:
        self.values: dict[Callable[..., Any], Any] = {}
        self.pending: dict[Callable[..., Any], asyncio.Future[Any]] = {}
        self._stack: AsyncExitStack | None = None
        self._lock: threading.RLock | None = None

    @property
    def lock(self) -> threading.RLock:
        """Held while a process-scoped value is created by a blocking invocation.

        Made on first use: a function without process-scoped providers does not
        import threading (a cold start's 2.7 million instructions).
        """
        lock = self._lock
        if lock is None:
            with _MAKING_LOCK:
                if self._lock is None:
                    import threading

                    self._lock = threading.RLock()
                lock = self._lock
        return lock

    def exit_stack(self) -> AsyncExitStack:
        stack = self._stack
        if stack is None:
            from contextlib import AsyncExitStack

            stack = self._stack = AsyncExitStack()
        return stack

    async def close(self) -> None:
        """Run the teardowns of process-scoped generator providers and forget every value."""
        stack, self._stack = self._stack, None
        self.values.clear()
        if stack is not None:
            await stack.aclose()


class Resolver:
    """Resolves the dependencies of an app's handlers: binders, overrides and scopes."""

    def __init__(
        self,
        overrides: Mapping[Callable[..., Any], Callable[..., Any]],
        process: ProcessScope,
    ) -> None:
        self.overrides = overrides
        self.process = process
        self._binders: dict[tuple[Callable[..., Any], tuple[str, ...], bool], Binder] = {}

    def binder(self, fn: Callable[..., Any], path_params: tuple[str, ...], *, http: bool) -> Binder:
        """The binder of ``fn`` for HTTP (seeing ``path_params``) or for events; built once."""
        key = (fn, path_params, http)
        binder = self._binders.get(key)
        if binder is None:
            binder = self._binders[key] = Binder(fn, path_params=path_params, http=http)
        return binder

    # -- arguments ------------------------------------------------------------

    async def http_arguments(
        self, binder: Binder, request: HttpRequest, inv: Invocation, path_params: tuple[str, ...]
    ) -> dict[str, Any]:
        """Every argument of an HTTP handler or provider, dependencies resolved.

        Raises:
            EventValidationError: every failed parameter, the dependencies' included.
            UnsupportedMediaTypeError, MalformedEventError: as ``Binder.http_arguments``.
        """
        errors: list[FieldError] = []
        kwargs: dict[str, Any] = {}
        for p in binder.dependencies:
            assert p.depends is not None  # every dependency parameter has one
            try:
                kwargs[p.name] = await self.dependency(
                    p.depends, request, inv, path_params, http=True
                )
            except EventValidationError as exc:
                errors.extend(exc.errors)
        binder.http_arguments(request, inv.context, inv.path_params, errors, kwargs)
        if errors:
            # Two dependencies on one failing provider report its failure once.
            raise EventValidationError(list(dict.fromkeys(errors)))
        return kwargs

    async def event_arguments(
        self, binder: Binder, event: object, inv: Invocation
    ) -> dict[str, Any]:
        """Every argument of an event handler or provider, dependencies resolved.

        Raises:
            UnsupportedEventError, EventValidationError: as ``Binder.event_arguments``.
        """
        kwargs = binder.event_arguments(event, inv.context)
        for p in binder.dependencies:
            assert p.depends is not None  # every DEPENDENCY parameter has one
            kwargs[p.name] = await self.dependency(p.depends, event, inv, (), http=False)
        return kwargs

    # -- one dependency -------------------------------------------------------

    async def dependency(
        self,
        depends: Dependency,
        source: Any,
        inv: Invocation,
        path_params: tuple[str, ...],
        *,
        http: bool,
    ) -> Any:
        """The value of one dependency for this invocation (``source`` is the request or event).

        Raises:
            EventValidationError: the provider's own parameters failed to bind.
            ConfigurationError: a process-scoped provider takes invocation values.
            Exception: whatever the provider raised.
        """
        provider = depends.provider
        assert provider is not None  # Binder fills in Depends() from the annotation
        provider = self.overrides.get(provider, provider)
        if depends.scope == "process":
            return await self._process_value(provider, inv, http)
        cache = inv.values
        if depends.use_cache and cache is not None:
            value = cache.get(provider, _MISSING)
            if value is not _MISSING:
                return value
        binder = self._binders.get((provider, path_params, http))
        if binder is None:
            binder = self.binder(provider, path_params, http=http)
        if not binder.params:
            kwargs: dict[str, Any] = {}  # most providers take nothing: nothing to bind
        elif http:
            kwargs = await self.http_arguments(binder, source, inv, path_params)
        else:
            kwargs = await self.event_arguments(binder, source, inv)
        if binder.is_generator or binder.is_async_generator:
            value = await _enter(binder, kwargs, inv, inv.exit_stack)
        elif binder.is_async or inv.offload:
            value = await inv.call(binder.fn, binder.is_async, **kwargs)
        else:
            # What inv.call would do, without a coroutine (nor, mostly, arguments to pass).
            value = binder.fn(**kwargs) if kwargs else binder.fn()
        if depends.use_cache:
            # Read again: resolving the provider's own dependencies may have made it.
            cache = inv.values
            if cache is None:
                cache = inv.values = {}
            cache[provider] = value
        return value

    async def _process_value(
        self, provider: Callable[..., Any], inv: Invocation, http: bool
    ) -> Any:
        scope = self.process
        value = scope.values.get(provider, _MISSING)
        if value is not _MISSING:
            return value
        binder = self.binder(provider, (), http=http)
        for p in binder.params:
            if p.source is not Source.DEPENDENCY or p.depends.scope != "process":  # type: ignore[union-attr]
                raise ConfigurationError(
                    f"process-scoped provider {_name(provider)} takes {p.name!r}, which is not a "
                    "process-scoped dependency: it would tie one invocation's value to every other"
                )
        if inv.is_blocking:
            # Held while the value is created, so that threads invoking at once make
            # one (nothing here waits on an event loop, so holding it cannot stall one).
            with scope.lock:
                value = scope.values.get(provider, _MISSING)
                if value is _MISSING:
                    value = await self._create(provider, binder, inv, http)
            return value
        # Under an event loop, coroutines that arrive while the value is being created
        # wait for that one creation.
        import asyncio

        pending = scope.pending.get(provider)
        if pending is not None:
            return await asyncio.shield(pending)
        future = scope.pending[provider] = asyncio.get_running_loop().create_future()
        try:
            value = await self._create(provider, binder, inv, http)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters, if any, raise it themselves
            raise
        else:
            future.set_result(value)
        finally:
            del scope.pending[provider]
        return value

    async def _create(
        self, provider: Callable[..., Any], binder: Binder, inv: Invocation, http: bool
    ) -> Any:
        kwargs = {}
        for p in binder.params:
            inner = p.depends.provider  # type: ignore[union-attr]
            assert inner is not None  # Binder fills in Depends() from the annotation
            kwargs[p.name] = await self._process_value(self.overrides.get(inner, inner), inv, http)
        if binder.is_generator or binder.is_async_generator:
            value = await _enter(binder, kwargs, inv, self.process.exit_stack)
        else:
            value = await inv.call(binder.fn, binder.is_async, **kwargs)
        self.process.values[provider] = value
        return value


async def _enter(
    binder: Binder,
    kwargs: dict[str, Any],
    inv: Invocation,
    exit_stack: Callable[[], AsyncExitStack],
) -> Any:
    """Enter a generator provider: its value is what it yields, its rest goes on ``exit_stack``."""
    fn = binder.fn
    if binder.is_generator:
        from contextlib import contextmanager

        return exit_stack().enter_context(contextmanager(fn)(**kwargs))
    from contextlib import asynccontextmanager

    manager = asynccontextmanager(fn)(**kwargs)
    if inv.is_blocking:
        # No loop runs here: both halves go to the thread's own loop, the exit as a
        # plain callback so that closing the stack never waits on a loop either.
        from polyserve._aio import run_sync

        value = run_sync(manager.__aenter__())
        exit_stack().push(lambda *exc_info: run_sync(manager.__aexit__(*exc_info)))
        return value
    return await exit_stack().enter_async_context(manager)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
