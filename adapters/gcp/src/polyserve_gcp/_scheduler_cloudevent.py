"""Cloud Scheduler jobs delivered as CloudEvents -> ``ScheduleEvent``.

A job routed through Eventarc arrives as a CloudEvent of type
``google.cloud.scheduler.job.v1.executed`` whose ``source`` ends in the job's
resource name (``//cloudscheduler.googleapis.com/projects/P/locations/L/jobs/JOB``)
and whose data is ``SchedulerJobData`` (``{"customData": base64}``). The schedule's
name is the ``names`` mapping of the job's resource name or id, else the job id;
``scheduled_at`` is the event time, ``payload`` the decoded custom data.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from polyserve.adapter import Event, from_rfc3339, json_object
from polyserve.errors import MalformedEventError
from polyserve.events import ScheduleEvent
from polyserve.routing import Trigger
from polyserve_gcp._formats import decode_base64, last_segment, payload
from polyserve_gcp._names import logical

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve_gcp.types import CloudEventLike

__all__ = ["EVENT_TYPE", "is_http", "matches", "to_event", "to_native"]

EVENT_TYPE = "google.cloud.scheduler.job.v1.executed"

is_http = False


def matches(event: CloudEventLike) -> bool:
    """Whether ``event`` is a Cloud Scheduler job execution CloudEvent."""
    return event.get_attributes().get("type") == EVENT_TYPE


def to_event(event: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
    """The ``ScheduleEvent`` of a ``google.cloud.scheduler.job.v1.executed`` CloudEvent.

    Raises:
        MalformedEventError: no job in the source, unreadable data or time.
    """
    attrs = event.get_attributes()
    source = str(attrs.get("source") or "")
    job = source.split("cloudscheduler.googleapis.com/", 1)[-1]
    job_id = last_segment(job, "jobs")
    if job_id is None:
        raise MalformedEventError(f"a scheduler CloudEvent needs a job source, got {source!r}")
    data = event.get_data()
    custom = b""
    if data is not None and data != b"" and data != "":
        body = json_object(data, "Cloud Scheduler CloudEvent data")
        encoded = body.get("customData")
        if encoded is not None:
            custom = decode_base64(encoded, "Cloud Scheduler customData")
    when = attrs.get("time")
    name = logical(names, job, job_id)
    typed = ScheduleEvent(
        id=str(attrs.get("id") or ""),
        name=name,
        scheduled_at=_time(when),
        payload=payload(custom),
        raw=event,
    )
    return Event(Trigger.SCHEDULE, name, typed)


def _time(when: object) -> dt.datetime | None:
    if isinstance(when, dt.datetime):
        return when
    return from_rfc3339(when, "Cloud Scheduler event time") if when else None


def to_native(outcome: object, raw: CloudEventLike, context: Context) -> None:
    """Nothing: functions-framework answers 200 once the function returns."""
    return None
