from __future__ import annotations

import asyncio
import inspect
import random
from typing import Any

import pytest

from polyserve import App, ConfigurationError, Context, Message, RetryExhaustedError, Trigger
from polyserve.retry import Retry, retry


class FakeTime:
    """One clock for everything: ``monotonic`` for @retry, ``wall`` for the Context,
    and ``sleep`` that only moves the clock forward and records what was asked."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def context(self, timeout: float | None) -> Context:
        deadline = None if timeout is None else self.now + timeout
        return Context("test", deadline=deadline, clock=self.wall)


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``"ok"``."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.raised: list[Exception] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            exc = self.error(f"failure {self.calls}")
            self.raised.append(exc)
            raise exc
        return "ok"


# -- outcomes ------------------------------------------------------------------


def test_a_first_success_neither_retries_nor_sleeps() -> None:
    t = FakeTime()
    flaky = Flaky(0)
    assert retry(3, sleep=t.sleep, clock=t.monotonic)(flaky)() == "ok"
    assert flaky.calls == 1
    assert t.sleeps == []


def test_failures_are_retried_until_one_succeeds() -> None:
    t = FakeTime()
    flaky = Flaky(2)
    wrapped = retry(3, backoff="constant", base=0.25, sleep=t.sleep, clock=t.monotonic)(flaky)
    assert wrapped() == "ok"
    assert flaky.calls == 3
    assert t.sleeps == [0.25, 0.25]


def test_exhausted_attempts_raise_retry_exhausted_chained_from_the_last_failure() -> None:
    t = FakeTime()
    flaky = Flaky(10)
    wrapped = retry(3, backoff="constant", base=0.1, sleep=t.sleep, clock=t.monotonic)(flaky)
    with pytest.raises(RetryExhaustedError) as info:
        wrapped()
    err = info.value
    assert flaky.calls == 3
    assert err.attempts == 3
    assert err.last_exception is flaky.raised[-1]
    assert err.__cause__ is flaky.raised[-1]
    assert err.code == "retry_exhausted"
    assert t.sleeps == [0.1, 0.1]  # no sleep after the last attempt


def test_one_attempt_means_no_retry() -> None:
    t = FakeTime()
    flaky = Flaky(1)
    with pytest.raises(RetryExhaustedError) as info:
        retry(1, sleep=t.sleep, clock=t.monotonic)(flaky)()
    assert info.value.attempts == 1
    assert t.sleeps == []


# -- backoff sequences ---------------------------------------------------------


def test_exponential_backoff_uses_full_jitter_by_default() -> None:
    t = FakeTime()
    wrapped = retry(6, base=0.5, cap=3.0, sleep=t.sleep, clock=t.monotonic, rng=random.Random(42))(
        Flaky(10)
    )
    with pytest.raises(RetryExhaustedError):
        wrapped()
    expected_rng = random.Random(42)
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]  # min(cap, base * 2**n)
    assert t.sleeps == [expected_rng.uniform(0, c) for c in ceilings]
    assert all(0 <= s <= c for s, c in zip(t.sleeps, ceilings, strict=True))


def test_exponential_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    t = FakeTime()
    wrapped = retry(6, base=1.0, cap=5.0, jitter=False, sleep=t.sleep, clock=t.monotonic)(Flaky(10))
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert t.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_constant_backoff_sleeps_base_every_time() -> None:
    t = FakeTime()
    wrapped = retry(4, backoff="constant", base=0.75, sleep=t.sleep, clock=t.monotonic)(Flaky(10))
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert t.sleeps == [0.75, 0.75, 0.75]


def test_decorrelated_jitter_grows_from_the_previous_sleep_and_stays_within_bounds() -> None:
    t = FakeTime()
    wrapped = retry(
        7, backoff="decorrelated", base=0.2, cap=2.0, sleep=t.sleep, clock=t.monotonic,
        rng=random.Random(7),
    )(Flaky(10))  # fmt: skip
    with pytest.raises(RetryExhaustedError):
        wrapped()
    expected_rng = random.Random(7)
    expected: list[float] = []
    previous = 0.2
    for _ in range(6):
        previous = min(2.0, expected_rng.uniform(0.2, previous * 3))
        expected.append(previous)
    assert t.sleeps == expected
    assert all(0.2 <= s <= 2.0 for s in t.sleeps)


def test_many_attempts_never_overflow_the_exponential() -> None:
    t = FakeTime()
    wrapped = retry(200, base=1.0, cap=2.0, jitter=False, sleep=t.sleep, clock=t.monotonic)(
        Flaky(1000)
    )
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert len(t.sleeps) == 199
    assert t.sleeps[-1] == 2.0


def test_the_default_random_source_keeps_delays_within_the_ceiling() -> None:
    t = FakeTime()
    wrapped = retry(5, base=0.1, cap=0.3, sleep=t.sleep, clock=t.monotonic)(Flaky(10))
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert len(t.sleeps) == 4
    assert all(0 <= s <= c for s, c in zip(t.sleeps, [0.1, 0.2, 0.3, 0.3], strict=True))


# -- the deadline --------------------------------------------------------------


def test_never_sleeps_past_the_deadline_minus_the_margin() -> None:
    t = FakeTime()
    ctx = t.context(timeout=1.0)
    flaky = Flaky(10)

    @retry(10, backoff="constant", base=0.3, deadline_margin=0.5, sleep=t.sleep, clock=t.monotonic)
    def handler(msg: Message, context: Context) -> str:
        return flaky()

    with pytest.raises(RetryExhaustedError) as info:
        handler(Message(id="m"), ctx)
    # t=0 fails, sleeps to 0.3; t=0.3 fails, and 0.3 + 0.3 would pass 1.0 - 0.5.
    assert t.sleeps == [0.3]
    assert flaky.calls == 2
    assert info.value.attempts == 2
    assert info.value.last_exception is flaky.raised[-1]
    assert info.value.__cause__ is flaky.raised[-1]
    assert "deadline" in info.value.detail


def test_the_deadline_counts_the_time_the_calls_themselves_take() -> None:
    t = FakeTime()
    ctx = t.context(timeout=8.0)
    calls = 0

    @retry(10, backoff="constant", base=1.0, deadline_margin=1.0, sleep=t.sleep, clock=t.monotonic)
    def slow(context: Context) -> None:
        nonlocal calls
        calls += 1
        t.now += 3.0  # each call takes three seconds
        raise TimeoutError

    with pytest.raises(RetryExhaustedError) as info:
        slow(context=ctx)  # found among keyword arguments too
    # 0-3 call, sleep to 4, 4-7 call, then 7 + 1 would pass 8 - 1: stop.
    assert calls == 2
    assert t.sleeps == [1.0]
    assert info.value.attempts == 2


def test_a_context_without_deadline_leaves_only_the_attempt_limit() -> None:
    t = FakeTime()
    flaky = Flaky(3)
    wrapped = retry(4, backoff="constant", base=100.0, cap=100.0, sleep=t.sleep, clock=t.monotonic)(
        flaky
    )
    assert wrapped(t.context(timeout=None)) == "ok"
    assert t.sleeps == [100.0, 100.0, 100.0]


def test_an_explicit_context_provider_is_used_instead_of_the_arguments() -> None:
    t = FakeTime()
    ctx = t.context(timeout=0.2)
    flaky = Flaky(10)
    wrapped = retry(
        5, backoff="constant", base=0.1, deadline_margin=0.0, context=lambda: ctx,
        sleep=t.sleep, clock=t.monotonic,
    )(flaky)  # fmt: skip
    with pytest.raises(RetryExhaustedError):
        wrapped("no context argument here")
    assert t.sleeps == [0.1, 0.1]
    assert flaky.calls == 3


def test_the_wall_clock_is_read_once_per_call() -> None:
    # The deadline moves onto the monotonic clock at the start of the call, so a
    # wall clock jumping backwards mid-call cannot buy extra retries.
    t = FakeTime()
    wall = [t.now]
    ctx = Context("test", deadline=t.now + 1.0, clock=lambda: wall[0])

    def jump_back(seconds: float) -> None:
        t.sleep(seconds)
        wall[0] -= 1000.0

    wrapped = retry(
        10, backoff="constant", base=0.3, deadline_margin=0.0, sleep=jump_back, clock=t.monotonic
    )(Flaky(10))
    with pytest.raises(RetryExhaustedError):
        wrapped(ctx)
    assert t.sleeps == [0.3, 0.3, 0.3]


# -- what is retried -----------------------------------------------------------


def test_give_up_on_exceptions_propagate_at_once_unchanged() -> None:
    t = FakeTime()
    flaky = Flaky(5, error=PermissionError)
    wrapped = retry(5, give_up_on=(PermissionError,), sleep=t.sleep, clock=t.monotonic)(flaky)
    with pytest.raises(PermissionError) as info:
        wrapped()
    assert info.value is flaky.raised[0]
    assert flaky.calls == 1
    assert t.sleeps == []


def test_give_up_on_wins_over_retry_on() -> None:
    t = FakeTime()
    flaky = Flaky(5, error=ConnectionResetError)
    wrapped = retry(
        5, retry_on=ConnectionError, give_up_on=ConnectionResetError, sleep=t.sleep,
        clock=t.monotonic,
    )(flaky)  # fmt: skip
    with pytest.raises(ConnectionResetError):
        wrapped()
    assert flaky.calls == 1


def test_exceptions_outside_retry_on_propagate_unchanged() -> None:
    t = FakeTime()
    flaky = Flaky(5, error=KeyError)
    wrapped = retry(5, retry_on=(ConnectionError, TimeoutError), sleep=t.sleep, clock=t.monotonic)(
        flaky
    )
    with pytest.raises(KeyError) as info:
        wrapped()
    assert info.value is flaky.raised[0]
    assert flaky.calls == 1


def test_a_predicate_decides_which_failures_are_retried() -> None:
    t = FakeTime()
    seen: list[BaseException] = []

    def transient(exc: BaseException) -> bool:
        seen.append(exc)
        return "transient" in str(exc)

    errors = iter([ValueError("transient 1"), ValueError("transient 2"), ValueError("fatal")])

    @retry(10, retry_on=transient, backoff="constant", base=0.0, sleep=t.sleep, clock=t.monotonic)
    def call() -> None:
        raise next(errors)

    with pytest.raises(ValueError, match="fatal"):
        call()
    assert [str(e) for e in seen] == ["transient 1", "transient 2", "fatal"]
    assert t.sleeps == [0.0, 0.0]


def test_a_retry_hand_off_is_never_retried_in_process() -> None:
    t = FakeTime()
    calls = 0

    @retry(5, sleep=t.sleep, clock=t.monotonic)
    def call() -> None:
        nonlocal calls
        calls += 1
        raise Retry("downstream is down", delay=60)

    with pytest.raises(Retry) as info:
        call()
    assert calls == 1
    assert info.value.delay == 60


def test_on_retry_sees_each_failed_attempt_its_exception_and_the_delay() -> None:
    t = FakeTime()
    flaky = Flaky(3)
    events: list[tuple[int, BaseException, float]] = []
    wrapped = retry(
        5, backoff="exponential", base=0.5, jitter=False, on_retry=lambda *a: events.append(a),
        sleep=t.sleep, clock=t.monotonic,
    )(flaky)  # fmt: skip
    assert wrapped() == "ok"
    assert events == [
        (1, flaky.raised[0], 0.5),
        (2, flaky.raised[1], 1.0),
        (3, flaky.raised[2], 2.0),
    ]
    assert t.sleeps == [0.5, 1.0, 2.0]


def test_on_retry_is_not_called_when_giving_up() -> None:
    t = FakeTime()
    events: list[object] = []
    wrapped = retry(2, on_retry=lambda *a: events.append(a), sleep=t.sleep, clock=t.monotonic)(
        Flaky(5)
    )
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert len(events) == 1


def test_base_exceptions_are_never_caught() -> None:
    t = FakeTime()

    @retry(5, retry_on=BaseException, sleep=t.sleep, clock=t.monotonic)
    def call() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        call()
    assert t.sleeps == []


# -- async ---------------------------------------------------------------------


def test_async_functions_are_retried_with_an_async_sleep() -> None:
    t = FakeTime()
    flaky = Flaky(2)

    @retry(3, backoff="constant", base=0.5, sleep=t.async_sleep, clock=t.monotonic)
    async def call(x: int) -> str:
        await asyncio.sleep(0)
        return flaky() + str(x)

    assert inspect.iscoroutinefunction(call)
    assert asyncio.run(call(7)) == "ok7"
    assert t.sleeps == [0.5, 0.5]


def test_async_exhaustion_and_jitter_match_the_sync_rules() -> None:
    t = FakeTime()
    flaky = Flaky(10)

    @retry(4, base=0.5, sleep=t.async_sleep, clock=t.monotonic, rng=random.Random(3))
    async def call() -> str:
        return flaky()

    with pytest.raises(RetryExhaustedError) as info:
        asyncio.run(call())
    expected_rng = random.Random(3)
    assert t.sleeps == [expected_rng.uniform(0, c) for c in (0.5, 1.0, 2.0)]
    assert info.value.attempts == 4
    assert info.value.last_exception is flaky.raised[-1]


def test_async_retries_respect_the_deadline() -> None:
    t = FakeTime()
    ctx = t.context(timeout=2.0)
    flaky = Flaky(10)

    @retry(
        10,
        backoff="constant",
        base=0.6,
        deadline_margin=0.5,
        sleep=t.async_sleep,
        clock=t.monotonic,
    )
    async def call(context: Context) -> str:
        return flaky()

    with pytest.raises(RetryExhaustedError):
        asyncio.run(call(ctx))
    assert t.sleeps == [0.6, 0.6]  # 1.2 + 0.6 would pass 2.0 - 0.5


def test_async_functions_sleep_with_asyncio_by_default() -> None:
    flaky = Flaky(1)

    @retry(2, backoff="constant", base=0.0)
    async def call() -> str:
        return flaky()

    assert asyncio.run(call()) == "ok"
    assert flaky.calls == 2


def test_async_give_up_on_propagates_unchanged() -> None:
    t = FakeTime()
    flaky = Flaky(5, error=PermissionError)

    @retry(5, give_up_on=PermissionError, sleep=t.async_sleep, clock=t.monotonic)
    async def call() -> str:
        return flaky()

    with pytest.raises(PermissionError) as info:
        asyncio.run(call())
    assert info.value is flaky.raised[0]
    assert t.sleeps == []


# -- configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"attempts": 0},
        {"attempts": -1},
        {"attempts": 2.5},
        {"attempts": True},
        {"base": -0.1},
        {"base": 2.0, "cap": 1.0},
        {"backoff": "linear"},
        {"deadline_margin": -1.0},
        {"retry_on": ("ConnectionError",)},
        {"retry_on": (int,)},
        {"give_up_on": (ValueError, "x")},
        {"give_up_on": lambda exc: True},
        {"on_retry": "print"},
        {"context": 3},
    ],
)
def test_invalid_settings_fail_at_decoration_time(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        retry(**settings)


def test_retry_without_parentheses_is_a_configuration_error() -> None:
    def handler() -> None: ...

    with pytest.raises(ConfigurationError, match="parentheses"):
        retry(handler)  # type: ignore[arg-type]  # the mistake under test


def test_decorating_something_not_callable_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        retry()(42)  # type: ignore[type-var]  # the mistake under test


# -- working with the app -------------------------------------------------------


def test_the_signature_and_metadata_are_kept() -> None:
    def handler(msg: Message, ctx: Context, *, limit: int = 3) -> str:
        """Handle one message."""
        return "ok"

    wrapped = retry()(handler)
    assert wrapped.__name__ == "handler"
    assert wrapped.__doc__ == "Handle one message."
    assert inspect.signature(wrapped) == inspect.signature(handler)


def test_stacked_under_a_queue_registration_the_app_binds_and_retries() -> None:
    t = FakeTime()
    app = App("shop")
    seen: list[tuple[str, str]] = []
    flaky = Flaky(2)

    @app.queue("orders")
    @retry(3, backoff="constant", base=0.2, sleep=t.sleep, clock=t.monotonic)
    def on_order(msg: Message, ctx: Context) -> str:
        seen.append((msg.id, ctx.invocation_id))
        return flaky()

    ctx = Context("test", invocation_id="inv-9", deadline=None)
    assert app.handle_event(Trigger.QUEUE, "orders", Message(id="m1"), ctx) == "ok"
    assert seen == [("m1", "inv-9")] * 3
    assert t.sleeps == [0.2, 0.2]


def test_stacked_async_handler_is_awaited_by_the_async_path() -> None:
    t = FakeTime()
    app = App("shop")
    flaky = Flaky(1)

    @app.queue("orders")
    @retry(2, backoff="constant", base=0.1, sleep=t.async_sleep, clock=t.monotonic)
    async def on_order(msg: Message) -> str:
        return flaky() + msg.id

    ctx = Context("test")
    result = asyncio.run(app.handle_event_async(Trigger.QUEUE, "orders", Message(id="m2"), ctx))
    assert result == "okm2"
    assert t.sleeps == [0.1]


# -- Retry ---------------------------------------------------------------------


def test_retry_carries_its_delay_reason_code_and_status() -> None:
    err = Retry("rate limited", delay=30)
    assert (err.delay, err.reason, err.code, err.status) == (
        30,
        "rate limited",
        "retry_requested",
        503,
    )
    assert err.to_dict() == {"code": "retry_requested", "detail": "rate limited", "retry_after": 30}
    plain = Retry()
    assert (plain.delay, plain.reason, plain.detail) == (None, "", "retry requested")
    assert "retry_after" not in plain.to_dict()


def test_retry_rejects_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="negative"):
        Retry(delay=-1)
