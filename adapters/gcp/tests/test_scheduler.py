"""Which schedule claims a Pub/Sub topic, and the ScheduleEvent a message becomes."""

from __future__ import annotations

import datetime as dt

import pytest

from polyserve import App, Message, ScheduleEvent
from polyserve_gcp import _scheduler
from polyserve_gcp._names import Names

TOPIC = "projects/shop/topics/ticks-prod"


def tick(event: object) -> None:
    """A registration target; these tests only look at the decision."""


@pytest.mark.parametrize(
    ("register", "names", "expected"),
    [
        ({"name": "nightly", "topic": "ticks-prod"}, {}, "nightly"),
        ({"name": "nightly", "topic": TOPIC}, {}, "nightly"),
        ({"name": "ticks-prod"}, {}, "ticks-prod"),
        ({"name": "nightly"}, {TOPIC: "nightly"}, "nightly"),
        ({"name": "nightly"}, {"ticks-prod": "nightly"}, "nightly"),
        ({"name": "nightly"}, {}, None),
        ({"name": "nightly", "topic": "other"}, {}, None),
    ],
)
def test_schedule_for_topic(
    register: dict[str, str], names: dict[str, str], expected: str | None
) -> None:
    app = App("t")
    app.schedule(register.pop("name"), cron="0 3 * * *", **register)(tick)
    assert _scheduler.schedule_for_topic(app, Names(names), TOPIC, "ticks-prod") == expected


def test_topic_handlers_never_claim_a_topic_for_a_schedule() -> None:
    app = App("t")
    app.topic("ticks-prod")(tick)
    assert _scheduler.schedule_for_topic(app, Names(), TOPIC, "ticks-prod") is None


def test_a_message_becomes_a_schedule_event() -> None:
    when = dt.datetime(2024, 5, 2, 3, tzinfo=dt.timezone.utc)
    message = Message(id="m-1", body=b'{"scope": "all"}', enqueued_at=when, raw="native")
    dispatch = _scheduler.from_message(message, "nightly")
    assert (dispatch.trigger.value, dispatch.name) == ("schedule", "nightly")
    assert dispatch.event == ScheduleEvent(
        id="m-1", name="nightly", scheduled_at=when, payload={"scope": "all"}
    )
    assert isinstance(dispatch.event, ScheduleEvent)
    assert dispatch.event.raw == "native"
