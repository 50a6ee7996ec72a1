"""Cloud Scheduler jobs delivered as CloudEvents reach ``@app.schedule``."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from adapters.gcp.tests.support import load, structured
from cloudevents.http import CloudEvent

import polyserve_gcp
from polyserve import App, ScheduleEvent
from polyserve.errors import MalformedEventError


def _run(event: CloudEvent, names: dict[str, str] | None = None) -> list[ScheduleEvent]:
    app = App("jobs")
    seen: list[ScheduleEvent] = []

    @app.schedule("nightly-report")
    def nightly(event: ScheduleEvent) -> None:
        seen.append(event)

    @app.schedule("hourly")
    def hourly(event: ScheduleEvent) -> None:
        seen.append(event)

    polyserve_gcp.cloudevent(app, names=names)(event)
    return seen


def test_sample_reaches_the_schedule_named_by_its_job() -> None:
    (event,) = _run(structured(load("scheduler-job-executed.json")))
    assert isinstance(event, ScheduleEvent)
    assert event.name == "nightly-report"
    assert event.id == "7d1e3a90-0042"
    assert event.scheduled_at == dt.datetime(2024, 5, 2, 2, 0, tzinfo=dt.timezone.utc)
    assert event.payload == {"report": "sales", "days": 7}


def _event(data: Any, job: str = "projects/p/locations/l/jobs/every-hour") -> CloudEvent:
    return CloudEvent(
        {
            "type": "google.cloud.scheduler.job.v1.executed",
            "source": f"//cloudscheduler.googleapis.com/{job}",
            "id": "e-1",
        },
        data,
    )


def test_names_map_the_job_and_empty_data_is_no_payload() -> None:
    (event,) = _run(_event({}), names={"every-hour": "hourly"})
    assert event.name == "hourly"
    assert event.payload is None


def test_text_payload() -> None:
    data = {"customData": base64.b64encode(b"go").decode()}
    (event,) = _run(_event(data), names={"projects/p/locations/l/jobs/every-hour": "hourly"})
    assert event.payload == "go"


@pytest.mark.parametrize(
    ("data", "job"),
    [
        ({"customData": "***"}, "projects/p/locations/l/jobs/j"),
        ([1, 2], "projects/p/locations/l/jobs/j"),
        ({}, "projects/p/locations/l"),
    ],
)
def test_malformed_job_events(data: Any, job: str) -> None:
    with pytest.raises(MalformedEventError):
        _run(_event(data, job))
