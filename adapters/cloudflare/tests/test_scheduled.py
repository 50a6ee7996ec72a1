from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING

import pytest

from polyserve import (
    App,
    ConfigurationError,
    MalformedEventError,
    ScheduleEvent,
    UnsupportedEventError,
)
from polyserve_cloudflare import entrypoint, handlers
from polyserve_cloudflare._scheduled import cron_of, cron_table, schedule_name
from polyserve_cloudflare._scheduled import to_schedule as to_event
from polyserve_cloudflare.testing import FakeController, FakeExecutionContext, FakeRuntime

if TYPE_CHECKING:
    from polyserve_cloudflare import Entrypoint

    from .conftest import Seen

FIRED = dt.datetime(2025, 6, 1, 3, 0, tzinfo=dt.timezone.utc)
FIRED_MS = FIRED.timestamp() * 1000


def test_the_matching_cron_runs_its_schedule(worker: Entrypoint, seen: Seen) -> None:
    controller = FakeController(FIRED_MS, "0 3 * * *")
    asyncio.run(worker.scheduled(controller, {}, FakeExecutionContext()))
    (event,) = seen.schedules
    assert event == ScheduleEvent(
        id="nightly@2025-06-01T03:00:00+00:00", name="nightly", scheduled_at=FIRED
    )
    assert event.raw is controller
    (ctx,) = seen.contexts
    assert ctx.provider == "cloudflare"
    assert ctx.deadline is not None


def test_cron_whitespace_does_not_matter(app: App) -> None:
    assert schedule_name(cron_table(app), " 0  3 * *   * ", {}) == "nightly"


def test_names_map_a_cron_to_a_schedule(app: App, seen: Seen) -> None:
    cls = entrypoint(app, names={"30 1 * * 1": "nightly"}, runtime=FakeRuntime())
    asyncio.run(cls(FakeExecutionContext(), {}).scheduled(FakeController(FIRED_MS, "30 1 * * 1")))
    assert seen.schedules[0].name == "nightly"


def test_an_undeclared_cron_is_unsupported(worker: Entrypoint) -> None:
    with pytest.raises(UnsupportedEventError) as info:
        asyncio.run(worker.scheduled(FakeController(FIRED_MS, "1 1 1 1 1")))
    assert info.value.description["cron"] == "1 1 1 1 1"


def test_handler_errors_propagate_so_the_run_is_recorded_failed(worker: Entrypoint) -> None:
    with pytest.raises(ValueError, match="schedule failed"):
        asyncio.run(worker.scheduled(FakeController(FIRED_MS, "*/5 * * * *")))


@pytest.mark.parametrize("when", ["soon", None, float("inf"), 1e20])
def test_a_bad_scheduled_time_is_malformed(worker: Entrypoint, when: object) -> None:
    with pytest.raises(MalformedEventError):
        asyncio.run(worker.scheduled(FakeController(when, "0 3 * * *")))  # type: ignore[arg-type]


def test_cron_of_checks_the_type() -> None:
    assert cron_of(FakeController(0, None)) == ""  # type: ignore[arg-type]
    with pytest.raises(MalformedEventError):
        cron_of(FakeController(0, 5))  # type: ignore[arg-type]


def test_to_event_names_the_firing() -> None:
    event = to_event(FakeController(FIRED_MS + 1500, "0 3 * * *"), "nightly")
    assert event.scheduled_at == FIRED + dt.timedelta(seconds=1.5)
    assert event.is_past_due is False


def test_two_schedules_on_one_cron_are_a_configuration_error() -> None:
    app = App("twins")
    app.schedule("a", cron="0 * * * *")(lambda: None)
    app.schedule("b", cron="0  * * * *")(lambda: None)
    with pytest.raises(ConfigurationError, match="both use cron"):
        entrypoint(app)
    with pytest.raises(ConfigurationError):
        handlers(app)


def test_module_level_on_scheduled(app: App, seen: Seen) -> None:
    on_scheduled = handlers(app, runtime=FakeRuntime()).on_scheduled
    asyncio.run(on_scheduled(FakeController(FIRED_MS, "0 3 * * *"), {}, FakeExecutionContext()))
    assert seen.schedules[0].name == "nightly"
