"""Retrying inside an invocation, and handing a retry back to the platform.

Two tools for two situations:

* ``@retry(...)`` retries a call in process, with backoff, for failures that
  clear up within seconds (a throttled API, a dropped connection). It knows the
  invocation's deadline and never sleeps past it.
* ``raise Retry(delay=30)`` gives up on this delivery and asks the platform to
  redeliver the event later, for failures that need minutes (a downstream
  outage). Nothing sleeps; the platform's own redelivery does the waiting.

Backoff strategies (``n`` counts retries from 0, ``rng`` is the injected random source)::

    exponential   rng.uniform(0, min(cap, base * 2**n))      "full jitter" (default)
    exponential   min(cap, base * 2**n)                       with jitter=False
    constant      base
    decorrelated  min(cap, rng.uniform(base, previous * 3))  previous starts at base
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from polyserve.context import Context
from polyserve.errors import ConfigurationError, PolyserveError, RetryExhaustedError

if TYPE_CHECKING:
    import random

__all__ = ["Backoff", "Retry", "retry"]

F = TypeVar("F", bound=Callable[..., Any])

Backoff = Literal["exponential", "constant", "decorrelated"]

_BACKOFFS = ("exponential", "constant", "decorrelated")

# 2.0 ** 1024 overflows a float; long before that, every delay is the cap.
_MAX_DOUBLINGS = 64


class Retry(PolyserveError):
    """Raised by a handler: fail this delivery and let the platform redeliver it.

    ``delay`` (seconds) asks for redelivery after about that long, where the
    platform allows a per-message delay (SQS visibility, Cloudflare
    ``retry(delaySeconds=...)``); elsewhere the platform's own schedule applies.
    In a batch the record is reported failed with ``ItemFailure.retry_delay``;
    for a single event the exception propagates so the host retries.
    ``@retry`` never retries a ``Retry``: it is a hand-off, not a failure to repeat.

    Raises:
        ValueError: ``delay`` is negative.
    """

    default_code = "retry_requested"
    default_status = 503
    is_exposed = True

    def __init__(self, reason: str = "", *, delay: float | None = None) -> None:
        if delay is not None and delay < 0:
            raise ValueError(f"Retry delay must not be negative, got {delay}")
        super().__init__(reason or "retry requested")
        self.reason = reason
        self.delay = delay

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.delay is not None:
            data["retry_after"] = self.delay
        return data

    @property
    def headers(self) -> Mapping[str, str]:
        """``Retry-After`` in whole seconds, when a delay was given (HTTP handlers)."""
        if self.delay is None:
            return {}
        return {"retry-after": str(math.ceil(self.delay))}


def retry(
    attempts: int = 3,
    *,
    backoff: Backoff = "exponential",
    base: float = 0.1,
    cap: float = 10.0,
    jitter: bool = True,
    retry_on: tuple[type[BaseException], ...]
    | type[BaseException]
    | Callable[[BaseException], bool] = (Exception,),
    give_up_on: tuple[type[BaseException], ...] | type[BaseException] = (),
    on_retry: Callable[[int, BaseException, float], object] | None = None,
    deadline_margin: float = 0.5,
    context: Callable[[], Context | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] | None = None,
    rng: random.Random | None = None,
) -> Callable[[F], F]:
    """Decorator: call the function up to ``attempts`` times, sleeping between failures.

    Works on sync and async functions alike, and keeps the wrapped function's
    signature, so it can sit under ``@app.queue(...)`` and the like.

    Args:
        attempts: total calls, at least 1 (``attempts=3`` is one call and two retries).
        backoff: ``"exponential"``, ``"constant"`` or ``"decorrelated"`` (see the module docs).
        base: the first (or, for ``"constant"``, every) delay in seconds.
        cap: the longest delay in seconds.
        jitter: for ``"exponential"`` only: ``False`` sleeps the full ``min(cap, base * 2**n)``.
        retry_on: exception types to retry, or a predicate taking the exception.
            Anything else propagates unchanged at once.
        give_up_on: exception types that propagate unchanged at once, even when
            ``retry_on`` matches them. ``Retry`` always does.
        on_retry: called as ``on_retry(attempt, exception, delay)`` before each
            sleep, where ``attempt`` is the 1-based number of the call that failed.
        deadline_margin: seconds to keep free before the invocation's deadline.
        context: returns the ``Context`` whose deadline applies; by default the
            first ``Context`` among the call's arguments is used. With none, only
            ``attempts`` limits the retries.
        clock: monotonic seconds, for measuring the time left (injectable for tests).
        sleep: ``time.sleep`` for sync functions, ``asyncio.sleep`` for async ones
            (an async function needs an awaitable-returning ``sleep``).
        rng: the source of jitter; a fresh ``random.Random()`` by default.

    Raises:
        ConfigurationError: at decoration time, for an invalid setting.
        RetryExhaustedError: every attempt failed, or the next sleep would end
            within ``deadline_margin`` of the deadline. It carries ``attempts``
            and ``last_exception`` and is chained from the last failure.
    """
    policy = _Policy(
        attempts, backoff, base, cap, jitter, retry_on, give_up_on, on_retry,
        deadline_margin, context, clock, rng,
    )  # fmt: skip

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise ConfigurationError(f"@retry needs a function, got {fn!r}")
        name = getattr(fn, "__qualname__", repr(fn))
        if inspect.iscoroutinefunction(fn):
            pause: Callable[[float], Any] = sleep or _async_sleep

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                run = policy.start(name, args, kwargs)
                while True:
                    try:
                        return await fn(*args, **kwargs)
                    except Exception as exc:
                        delay = run.after_failure(exc)
                        if delay is None:
                            raise
                    await pause(delay)

            return run_async  # type: ignore[return-value]  # wraps keeps fn's signature

        pause = sleep or time.sleep

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            run = policy.start(name, args, kwargs)
            while True:
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    delay = run.after_failure(exc)
                    if delay is None:
                        raise
                pause(delay)

        return run_sync  # type: ignore[return-value]  # wraps keeps fn's signature

    return decorate


async def _async_sleep(seconds: float) -> None:
    import asyncio  # already loaded: this only runs inside an event loop

    await asyncio.sleep(seconds)


def _exception_types(value: object, setting: str) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple) else (value,)
    for tp in types:
        if not (isinstance(tp, type) and issubclass(tp, BaseException)):
            raise ConfigurationError(f"{setting} must hold exception types, got {tp!r}")
    return types


class _Policy:
    """The validated settings of one ``@retry``; ``start`` begins one call's retries."""

    __slots__ = (
        "attempts", "backoff", "base", "cap", "clock", "context", "give_up_on", "jitter",
        "margin", "on_retry", "predicate", "retry_on", "rng",
    )  # fmt: skip

    def __init__(
        self,
        attempts: int,
        backoff: str,
        base: float,
        cap: float,
        jitter: bool,
        retry_on: object,
        give_up_on: object,
        on_retry: Callable[[int, BaseException, float], object] | None,
        margin: float,
        context: Callable[[], Context | None] | None,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            hint = " (write @retry() with parentheses)" if callable(attempts) else ""
            raise ConfigurationError(f"attempts must be an int, got {attempts!r}{hint}")
        if attempts < 1:
            raise ConfigurationError(f"attempts must be at least 1, got {attempts}")
        if backoff not in _BACKOFFS:
            raise ConfigurationError(f"unknown backoff {backoff!r}; choose one of {_BACKOFFS}")
        if base < 0:
            raise ConfigurationError(f"base must not be negative, got {base}")
        if cap < base:
            raise ConfigurationError(f"cap ({cap}) must not be less than base ({base})")
        if margin < 0:
            raise ConfigurationError(f"deadline_margin must not be negative, got {margin}")
        for hook, label in ((on_retry, "on_retry"), (context, "context")):
            if hook is not None and not callable(hook):
                raise ConfigurationError(f"{label} must be callable, got {hook!r}")
        self.predicate: Callable[[BaseException], bool] | None = None
        self.retry_on: tuple[type[BaseException], ...] = ()
        if callable(retry_on) and not isinstance(retry_on, type):
            self.predicate = retry_on
        else:
            self.retry_on = _exception_types(retry_on, "retry_on")
        self.give_up_on = _exception_types(give_up_on, "give_up_on")
        self.attempts = attempts
        self.backoff = backoff
        self.base = float(base)
        self.cap = float(cap)
        self.jitter = jitter
        self.on_retry = on_retry
        self.margin = float(margin)
        self.context = context
        self.clock = clock
        self.rng = rng

    def start(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Run:
        """The state of one call: attempts made, last delay, and the deadline's clock time."""
        ctx = self.context() if self.context is not None else _find_context(args, kwargs)
        remaining = ctx.remaining_time() if ctx is not None else None
        # The deadline is read once and moved onto the monotonic clock, so a wall
        # clock adjusted mid-call cannot stretch or shrink the time left.
        stop_at = None if remaining is None else self.clock() + remaining - self.margin
        return _Run(self, name, stop_at)

    def random(self) -> random.Random:
        if self.rng is None:
            import random  # on first retry only: random costs import time

            self.rng = random.Random()
        return self.rng

    def retries(self, exc: Exception) -> bool:
        if isinstance(exc, (Retry, *self.give_up_on)):
            return False
        if self.predicate is not None:
            return bool(self.predicate(exc))
        return isinstance(exc, self.retry_on)


class _Run:
    __slots__ = ("made", "name", "policy", "previous", "stop_at")

    def __init__(self, policy: _Policy, name: str, stop_at: float | None) -> None:
        self.policy = policy
        self.name = name
        self.stop_at = stop_at
        self.made = 0
        self.previous = policy.base

    def after_failure(self, exc: Exception) -> float | None:
        """The delay before the next attempt, or ``None`` when ``exc`` is not retried.

        Raises:
            RetryExhaustedError: no attempt is left, or no time before the deadline.
        """
        policy = self.policy
        self.made += 1
        if not policy.retries(exc):
            return None
        if self.made >= policy.attempts:
            raise RetryExhaustedError(
                f"{self.name} failed {self.made} times (last error: {type(exc).__name__})",
                attempts=self.made,
                last_exception=exc,
            ) from exc
        delay = self.delay()
        if self.stop_at is not None and policy.clock() + delay > self.stop_at:
            raise RetryExhaustedError(
                f"{self.name} failed {self.made} times; no time is left before the deadline "
                f"for another attempt (last error: {type(exc).__name__})",
                attempts=self.made,
                last_exception=exc,
            ) from exc
        if policy.on_retry is not None:
            policy.on_retry(self.made, exc, delay)
        return delay

    def delay(self) -> float:
        policy = self.policy
        retry_index = self.made - 1
        if policy.backoff == "constant":
            return policy.base
        if policy.backoff == "decorrelated":
            self.previous = min(policy.cap, policy.random().uniform(policy.base, self.previous * 3))
            return self.previous
        ceiling = (
            policy.cap
            if retry_index >= _MAX_DOUBLINGS
            else min(policy.cap, policy.base * 2.0**retry_index)
        )
        return policy.random().uniform(0, ceiling) if policy.jitter else ceiling


def _find_context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Context | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Context):
            return value
    return None
