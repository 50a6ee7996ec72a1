"""The invocation pipeline: middleware around a handler, and exception handlers.

Every invocation, an HTTP request or one event, takes the same path::

    app middleware -> router middleware -> route (or registration) middleware -> endpoint
                                                     endpoint: dependencies, binding, handler

An exception from the endpoint goes to the most specific exception handler
registered for its class, so middleware see the outcome the handler produced
(for HTTP, always a response). An exception from a middleware travels out through
the middleware around it, which may catch it; if none does, the same exception
handlers get it at the outside. What no handler takes keeps its default: a
problem+json response for HTTP, and for events the exception itself, so the
platform redelivers.

The pipeline is written once, as coroutines. Async entry points await it.
Synchronous ones (Lambda, functions-framework, Azure's sync functions) drive it
with ``run``, which needs no event loop: under such an invocation every async
callable (handler, middleware, provider) is run to completion on the thread's own
loop by ``Invocation.call``, so the pipeline itself never suspends.
"""

from __future__ import annotations

from polyserve._value import Value
from polyserve.errors import ConfigurationError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Mapping
    from contextlib import AsyncExitStack
    from typing import Any, TypeVar

    from polyserve.context import Context

    T = TypeVar("T")
    # One step of the pipeline: the event (or request) and the invocation in, the
    # result (or response) out.
    Step = Callable[[Any, "Invocation"], Coroutine[Any, Any, Any]]
    ExceptionHandler = Callable[[Exception, Any, Context], Any]

__all__ = [
    "Invocation",
    "Middleware",
    "SetAside",
    "chain",
    "find_exception_handler",
    "is_async_callable",
    "run",
]


class SetAside(Value):
    """Returned by an event handler or exception handler: acknowledge the event unhandled.

    A set-aside event is not redelivered and is not counted as a success: a batch
    lists it in ``BatchResult.set_aside``, and a log line records ``reason``. Use it
    for events that can never succeed (a malformed payload, a deleted customer),
    which redelivery would only repeat.
    """

    __slots__ = ("reason",)
    _fields = ("reason",)
    reason: str

    def __init__(self, reason: str = "") -> None:
        object.__setattr__(self, "reason", reason)


class Invocation:
    """The state of one invocation as it moves through the pipeline.

    ``context`` is the handler's ``Context``. ``is_blocking`` is true when a
    synchronous entry point drives the pipeline (see ``run``); ``offload`` says
    whether synchronous callables go to a worker thread under an async entry point
    (the local server) or run inline (Workers, which have no threads). The rest is
    bookkeeping: the invocation's dependency values, the teardowns of generator
    providers, the matched path parameters, and the handler's exception, if any.
    """

    __slots__ = ("_stack", "context", "error", "is_blocking", "offload", "path_params", "values")

    def __init__(self, context: Context, is_blocking: bool, offload: bool = False) -> None:
        self.context = context
        self.is_blocking = is_blocking
        self.offload = offload
        self.values: dict[Any, Any] | None = None
        self.path_params: Mapping[str, Any] = _NO_PARAMS
        self.error: BaseException | None = None
        self._stack: AsyncExitStack | None = None

    def fork(self) -> Invocation:
        """A fresh invocation sharing this one's context and mode."""
        return Invocation(self.context, self.is_blocking, self.offload)

    def restart(self, context: Context) -> None:
        """Make this a fresh invocation for ``context`` (the next record of a batch).

        The records of a batch run one after another, so one object serves them all;
        ``close`` must have run for the previous one.
        """
        self.context = context
        self.values = None
        self.error = None

    async def call(self, fn: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (a coroutine function when ``is_async``) and return its result.

        The one place where sync and async code meet: an async callable is awaited,
        or run on the thread's own loop under a blocking invocation; a sync one is
        called inline, or in a worker thread when the invocation offloads. (The HTTP
        endpoint and the dependency resolver call a sync callable inline themselves
        when the invocation does not offload: a coroutine and two copies of the
        keyword arguments cost a small GET 4%.)
        """
        if is_async:
            if self.is_blocking:
                # On the thread's own loop, what ``fn`` calls in turn is awaited on that
                # loop, and sync middleware below it go to a worker thread so that they
                # can wait for async work.
                self.is_blocking, self.offload = False, True
                try:
                    return _run_on_loop(fn(*args, **kwargs))
                finally:
                    self.is_blocking, self.offload = True, False
            return await fn(*args, **kwargs)
        if self.offload:
            import asyncio  # loaded already: an offloading invocation runs in a loop

            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    def exit_stack(self) -> AsyncExitStack:
        """The stack of teardowns run by ``close``; created on first use."""
        stack = self._stack
        if stack is None:
            from contextlib import AsyncExitStack

            stack = self._stack = AsyncExitStack()
        return stack

    @property
    def has_teardowns(self) -> bool:
        """Whether ``close`` has teardowns to run (a generator provider was entered)."""
        return self._stack is not None

    async def close(self) -> None:
        """Run the teardowns of the generator providers, last entered first.

        The handler's exception, if it raised, is thrown into each, so a provider can
        roll back. A teardown that raises is logged: the outcome is decided already.
        """
        stack, self._stack = self._stack, None
        if stack is None:
            return
        error = self.error
        try:
            if error is None:
                await stack.aclose()
            else:
                await stack.__aexit__(type(error), error, error.__traceback__)
        except Exception as exc:
            if exc is not error:
                self.context.logger.exception("a dependency's teardown failed", exc)


_NO_PARAMS: Mapping[str, Any] = {}


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Drive ``coro``, a pipeline run under a blocking ``Invocation``, to its result.

    Such a coroutine never suspends (its async callables ran on the thread's own
    loop), so one ``send`` finishes it with no event loop at all.

    Raises:
        Exception: whatever the coroutine raised.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]  # the coroutine's own result
    coro.close()
    raise ConfigurationError(
        "a synchronous invocation reached code that waits on an event loop; "
        "make it an async function so polyserve runs it on a loop"
    )


def _run_on_loop(coro: Coroutine[Any, Any, T]) -> T:
    from polyserve._aio import run_sync

    return run_sync(coro)


class Middleware(Value):
    """A middleware function and where it applies.

    ``fn(call, event, ctx)`` runs around every invocation it applies to: it may
    call ``call(event)`` (awaiting it when ``fn`` is async) with the event or a
    replacement, and return that result, a replacement, or its own result without
    calling ``call`` at all. For HTTP, ``event`` is the ``HttpRequest`` and
    ``call`` returns the ``HttpResponse``; a result that is not a response is
    rendered like a handler's. For other triggers, ``event`` is the typed event and
    ``call`` returns the handler's result.

    ``http`` and ``events`` say which invocations it applies to.
    """

    __slots__ = ("events", "fn", "http", "is_async")
    _fields = ("fn", "http", "events")

    fn: Callable[..., Any]
    http: bool
    events: bool
    is_async: bool

    def __init__(self, fn: Callable[..., Any], *, http: bool = True, events: bool = True) -> None:
        if not callable(fn):
            raise ConfigurationError(f"middleware must be callable, got {fn!r}")
        set_field = object.__setattr__
        set_field(self, "fn", fn)
        set_field(self, "http", http)
        set_field(self, "events", events)
        set_field(self, "is_async", is_async_callable(fn))


def as_middleware(items: Iterable[Middleware | Callable[..., Any]]) -> tuple[Middleware, ...]:
    """``items`` as ``Middleware`` (plain functions apply to every invocation)."""
    return tuple(m if isinstance(m, Middleware) else Middleware(m) for m in items)


def chain(middleware: Iterable[Middleware], endpoint: Step, *, http: bool) -> Step:
    """The step that runs ``middleware`` (first outermost) around ``endpoint``.

    Only the middleware that apply to HTTP (``http=True``) or to events are kept.
    """
    step = endpoint
    for mw in reversed([m for m in middleware if (m.http if http else m.events)]):
        step = _async_layer(mw.fn, step) if mw.is_async else _sync_layer(mw.fn, step)
    return step


def _async_layer(fn: Callable[..., Any], inner: Step) -> Step:
    async def layer(event: Any, inv: Invocation) -> Any:
        async def call(event: Any) -> Any:
            return await inner(event, inv)

        return await inv.call(fn, True, call, event, inv.context)

    return layer


def _sync_layer(fn: Callable[..., Any], inner: Step) -> Step:
    async def layer(event: Any, inv: Invocation) -> Any:
        if inv.is_blocking:
            # Nothing below suspends under a blocking invocation: drive it in place.
            return fn(lambda event: run(inner(event, inv)), event, inv.context)
        if inv.offload:
            # The middleware runs in a worker thread, and what it calls runs back on
            # the loop, where async handlers and providers belong.
            import asyncio

            loop = asyncio.get_running_loop()

            def call(event: Any) -> Any:
                return asyncio.run_coroutine_threadsafe(inner(event, inv), loop).result()

            return await asyncio.to_thread(fn, call, event, inv.context)
        return fn(lambda event: _run_inline(inner(event, inv)), event, inv.context)

    return layer


def _run_inline(coro: Coroutine[Any, Any, T]) -> T:
    # A sync middleware's call, inside an event loop that has no threads to spare
    # (Workers): fine while nothing below it waits on the loop.
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]  # the coroutine's own result
    coro.close()
    raise ConfigurationError(
        "a synchronous middleware cannot wait for async work on this runtime; "
        "make the middleware an async function"
    )


def find_exception_handler(
    exc: BaseException, *tables: Mapping[type[BaseException], ExceptionHandler]
) -> ExceptionHandler | None:
    """The handler for ``exc``: the most specific class wins, then the first table.

    Classes are tried in ``exc``'s method resolution order, so a handler for
    ``KeyError`` takes precedence over one for ``LookupError`` whatever the order
    they were registered in.
    """
    for cls in type(exc).__mro__:
        for table in tables:
            handler = table.get(cls)
            if handler is not None:
                return handler
    return None


def check_exception_class(exc_class: object) -> None:
    """Raise ``ConfigurationError`` unless ``exc_class`` is an exception class."""
    if not (isinstance(exc_class, type) and issubclass(exc_class, Exception)):
        raise ConfigurationError(f"exception handlers take Exception subclasses, got {exc_class!r}")


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine: an async function, also behind a decorator
    or a ``functools.partial``, or an object whose ``__call__`` is one."""
    import inspect  # only when an app is built: apps are built once per process

    target = inspect.unwrap(fn)
    while hasattr(target, "func") and hasattr(target, "args"):  # functools.partial
        target = target.func
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(fn):
        return True
    if inspect.isroutine(target) or isinstance(target, type):
        return False
    return inspect.iscoroutinefunction(type(target).__call__)
