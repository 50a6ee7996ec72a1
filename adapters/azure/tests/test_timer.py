"""The timer trigger: NCRONTAB schedules from ``cron``/``rate``, and ``ScheduleEvent``s."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from adapters.azure.tests.support import call, functions, load_native, trigger
from azure.functions.timer import TimerRequest

import polyserve_azure
from polyserve import App, ConfigurationError, MalformedEventError, ScheduleEvent
from polyserve_azure._timer import ncrontab

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("cron", "rate", "expected"),
    [
        ("0 3 * * *", None, "0 0 3 * * *"),
        ("*/15 9-17 * * 1-5", None, "0 */15 9-17 * * 1-5"),
        ("0 3 * * *", "5 minutes", "0 0 3 * * *"),
        (None, "1 second", "* * * * * *"),
        (None, "30 seconds", "*/30 * * * * *"),
        (None, "120 seconds", "0 */2 * * * *"),
        (None, "1 minute", "0 * * * * *"),
        (None, "5 minutes", "0 */5 * * * *"),
        (None, "5 Minutes", "0 */5 * * * *"),
        (None, "60 minutes", "0 0 * * * *"),
        (None, "90 minutes", None),
        (None, "7 minutes", None),
        (None, "6 hours", "0 0 */6 * * *"),
        (None, "48 hours", None),
        (None, "24 hours", "0 0 0 * * *"),
        (None, "1 day", "0 0 0 * * *"),
        (None, "2 days", None),
        (None, "0 minutes", None),
        (None, "every minute", None),
        (None, None, None),
        ("0 3 * *", None, None),
    ],
)
def test_schedules_become_ncrontab(
    cron: str | None, rate: str | None, expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(ConfigurationError):
            ncrontab("s", cron, rate)
    else:
        assert ncrontab("s", cron, rate) == expected


def test_the_timer_function_has_the_schedule(fns: dict[str, Function]) -> None:
    assert trigger(fns["schedule_tick"])["schedule"] == "0 */5 * * * *"


def test_a_timer_invocation(fns: dict[str, Function], recorder: Recorder) -> None:
    native = load_native("timer.json")
    assert call(fns["schedule_tick"], native, invocation_id="inv-t") is None
    assert recorder.last == ScheduleEvent(
        id="inv-t",
        name="tick",
        scheduled_at=dt.datetime(2024, 6, 3, 3, 0, tzinfo=UTC),
        is_past_due=True,
    )
    assert recorder.last.raw is native


@pytest.mark.parametrize(
    ("status", "scheduled_at"),
    [
        ({}, None),
        ({"Next": "06/03/2024 03:00:00+00:00"}, dt.datetime(2024, 6, 3, 3, tzinfo=UTC)),
        ({"next": "2024-06-03T03:00:00Z"}, dt.datetime(2024, 6, 3, 3, tzinfo=UTC)),
    ],
)
def test_the_occurrence_comes_from_the_schedule_status(
    fns: dict[str, Function], recorder: Recorder, status: dict[str, Any], scheduled_at: Any
) -> None:
    call(fns["schedule_tick"], TimerRequest(schedule_status=status))
    assert recorder.last.scheduled_at == scheduled_at
    assert recorder.last.is_past_due is False


def test_the_handler_result_is_not_returned_to_the_host() -> None:
    app = App("report")
    app.schedule("nightly", cron="0 3 * * *")(lambda event: {"pets": 3})
    fn = functions(polyserve_azure.function_app(app))["schedule_nightly"]
    assert call(fn, TimerRequest()) is None


@pytest.mark.parametrize(
    "native",
    [
        # Mistyped on purpose (hence the type ignores): each must fail with a typed error.
        TimerRequest(past_due="yes"),  # type: ignore[arg-type]
        TimerRequest(schedule_status={"Next": "whenever"}),
        TimerRequest(schedule_status=["Next"]),  # type: ignore[arg-type]
    ],
    ids=["text-past-due", "bad-next", "list-status"],
)
def test_a_malformed_timer_request_is_a_typed_error(fns: dict[str, Function], native: Any) -> None:
    with pytest.raises(MalformedEventError):
        call(fns["schedule_tick"], native)
