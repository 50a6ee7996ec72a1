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

Jobs delivered as CloudEvents are ``_scheduler_cloudevent``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.adapter import Event, from_rfc3339
from polyserve.errors import MalformedEventError
from polyserve.events import ScheduleEvent
from polyserve.routing import Trigger
from polyserve_gcp._formats import last_segment, payload
from polyserve_gcp._names import logical

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve import App, HttpRequest, Message

__all__ = [
    "JOB_NAME_HEADER",
    "SCHEDULE_TIME_HEADER",
    "from_message",
    "from_request",
    "schedule_for_topic",
]

JOB_NAME_HEADER = "x-cloudscheduler-jobname"
SCHEDULE_TIME_HEADER = "x-cloudscheduler-scheduletime"


def schedule_for_topic(
    app: App, names: Mapping[str, str], topic: str | None, topic_id: str
) -> str | None:
    """The name of the schedule that claims messages on the topic, if one does."""
    schedules = [r for r in app.registrations if r.trigger is Trigger.SCHEDULE]
    claimed = {topic_id, topic} - {None}
    for reg in schedules:
        if reg.options.get("topic") in claimed:
            return reg.name
    wanted = logical(names, topic, topic_id)
    for reg in schedules:
        if reg.name == wanted:
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


def from_request(request: HttpRequest, suffix: str, names: Mapping[str, str]) -> Event:
    """The ``ScheduleEvent`` for a request to the schedule path (``suffix``: the rest of it).

    Raises:
        MalformedEventError: no schedule name in the path or the headers, or an
            unreadable schedule time.
    """
    if suffix:
        name = logical(names, suffix)
    else:
        job = request.headers.get(JOB_NAME_HEADER, "")
        if not job:
            raise MalformedEventError(
                "a scheduler request needs the schedule name in its path or an "
                "X-CloudScheduler-JobName header"
            )
        name = logical(names, job, last_segment(job, "jobs"))
    when = request.headers.get(SCHEDULE_TIME_HEADER)
    event = ScheduleEvent(
        id=request.request_id,
        name=name,
        scheduled_at=from_rfc3339(when, "X-CloudScheduler-ScheduleTime") if when else None,
        payload=payload(request.body),
        raw=request.raw,
    )
    return Event(Trigger.SCHEDULE, name, event)
