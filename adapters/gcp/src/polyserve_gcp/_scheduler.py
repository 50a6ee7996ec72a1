"""Cloud Scheduler jobs: those that publish to Pub/Sub and those that call the HTTP function.

A Pub/Sub job publishes an ordinary message, so the topic decides: a message on
topic ``T`` is a ``ScheduleEvent`` when a schedule registration claims ``T``,
either explicitly (``@app.schedule("nightly", topic="T")``, the topic id or its
resource name) or by name (the schedule's name is the topic's logical name).
An explicit ``topic`` option wins over a name match.

An HTTP job is recognised by its path: a POST to the schedule path of the HTTP
target (``/_scheduler`` unless configured otherwise) or below it. The schedule
name is the rest of the path (``/_scheduler/nightly``), else the
``X-CloudScheduler-JobName`` header; ``X-CloudScheduler-ScheduleTime`` becomes
``scheduled_at``.

A job can also reach a CloudEvent function through Eventarc, as a CloudEvent of
type ``google.cloud.scheduler.job.v1.executed`` whose ``source`` ends in the job's
resource name (``//cloudscheduler.googleapis.com/projects/P/locations/L/jobs/JOB``)
and whose data is ``SchedulerJobData`` (``{"customData": base64}``). The schedule's
name is the ``names`` mapping of the job's resource name or id, else the job id;
``scheduled_at`` is the event time, ``payload`` the decoded custom data.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from polyserve.adapter import Event
from polyserve.errors import MalformedEventError
from polyserve.events import ScheduleEvent
from polyserve.routing import Trigger
from polyserve_gcp._formats import decode_base64, json_object, last_segment, parse_time, payload

if TYPE_CHECKING:
    from polyserve import App, HttpRequest, Message
    from polyserve_gcp._names import Names
    from polyserve_gcp.types import CloudEventLike

__all__ = [
    "EVENT_TYPE",
    "JOB_NAME_HEADER",
    "SCHEDULE_TIME_HEADER",
    "from_cloudevent",
    "from_message",
    "matches",
    "schedule_for_topic",
    "to_event",
]

JOB_NAME_HEADER = "x-cloudscheduler-jobname"
SCHEDULE_TIME_HEADER = "x-cloudscheduler-scheduletime"
EVENT_TYPE = "google.cloud.scheduler.job.v1.executed"


def schedule_for_topic(app: App, names: Names, topic: str | None, topic_id: str) -> str | None:
    """The name of the schedule that claims messages on the topic, if one does."""
    schedules = [r for r in app.registrations if r.trigger is Trigger.SCHEDULE]
    claimed = {topic_id, topic} - {None}
    for reg in schedules:
        if reg.options.get("topic") in claimed:
            return reg.name
    logical = names.logical(topic, topic_id)
    for reg in schedules:
        if reg.name == logical:
            return reg.name
    return None


def from_message(message: Message, name: str) -> Event:
    """The ``ScheduleEvent`` for a message a Pub/Sub scheduler job published."""
    event = ScheduleEvent(
        id=message.id,
        name=name,
        scheduled_at=message.enqueued_at,
        payload=payload(message.body),
        raw=message.raw,
    )
    return Event(Trigger.SCHEDULE, name, event)


def to_event(request: HttpRequest, suffix: str, names: Names) -> Event:
    """The ``ScheduleEvent`` for a request to the schedule path (``suffix``: the rest of it).

    Raises:
        MalformedEventError: no schedule name in the path or the headers, or an
            unreadable schedule time.
    """
    if suffix:
        name = names.logical(suffix)
    else:
        job = request.headers.get(JOB_NAME_HEADER, "")
        if not job:
            raise MalformedEventError(
                "a scheduler request needs the schedule name in its path or an "
                "X-CloudScheduler-JobName header"
            )
        name = names.logical(job, last_segment(job, "jobs"))
    when = request.headers.get(SCHEDULE_TIME_HEADER)
    event = ScheduleEvent(
        id=request.request_id,
        name=name,
        scheduled_at=parse_time(when, "X-CloudScheduler-ScheduleTime") if when else None,
        payload=payload(request.body),
        raw=request.raw,
    )
    return Event(Trigger.SCHEDULE, name, event)


def matches(event: CloudEventLike) -> bool:
    """Whether ``event`` is a Cloud Scheduler job execution CloudEvent."""
    return event.get_attributes().get("type") == EVENT_TYPE


def from_cloudevent(event: CloudEventLike, app: App, names: Names) -> Event:
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
    name = names.logical(job, job_id)
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
    return parse_time(when, "Cloud Scheduler event time") if when else None
