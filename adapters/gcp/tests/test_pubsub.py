"""Pub/Sub CloudEvents: the message, and which handler gets it."""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from adapters.gcp.tests.support import load, structured

import polyserve_gcp
from polyserve import App, Message, ScheduleEvent
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve_gcp import _pubsub
from polyserve_gcp._names import Names

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


def event(topic: str = "orders", subscription: str | None = "orders-sub", **message: Any) -> Any:
    data: dict[str, Any] = {
        "message": {"data": base64.b64encode(b"hi").decode(), "messageId": "m-1", **message}
    }
    if subscription is not None:
        data["subscription"] = f"projects/shop/subscriptions/{subscription}"
    return structured(
        {
            "specversion": "1.0",
            "type": _pubsub.EVENT_TYPE,
            "source": f"//pubsub.googleapis.com/projects/shop/topics/{topic}",
            "id": "ce-1",
            "time": "2024-01-01T00:00:00Z",
            "data": data,
        }
    )


def test_message_published_becomes_a_message(recorder: Recorder) -> None:
    raw = structured(load("pubsub-message-published.json"))

    assert polyserve_gcp.cloudevent(recorder.app)(raw) is None

    msg = recorder.last
    assert isinstance(msg, Message)
    assert msg.id == "8104427183624055"
    assert msg.json() == {"pet_id": 1, "adopter": "Ada"}
    assert msg.attributes == {"tenant": "acme", "priority": "5"}
    assert msg.attempt == 3
    assert msg.enqueued_at == dt.datetime(2024, 5, 1, 10, 0, 0, 250123, tzinfo=dt.timezone.utc)
    assert msg.source == "adoptions"
    assert msg.group_key == "pet-1"
    assert msg.raw is raw


def test_matches_only_message_published() -> None:
    assert _pubsub.matches(event())
    assert not _pubsub.matches(structured(load("storage-finalized.json")))


def test_defaults_when_optional_fields_are_absent() -> None:
    seen: list[Message] = []
    app = App("t")
    app.topic("orders")(lambda message: seen.append(message))
    polyserve_gcp.cloudevent(app)(event(data=None, orderingKey=""))
    (msg,) = seen
    assert msg.body == b""
    assert msg.attempt == 1
    assert msg.group_key is None
    assert msg.attributes == {}
    # Without publishTime the CloudEvent's own time stands in.
    assert msg.enqueued_at == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def route(app: App, names: Names | None = None, **kwargs: Any) -> tuple[str, str, object]:
    arguments: dict[str, Any] = {
        "topic": "projects/shop/topics/orders",
        "subscription": "projects/shop/subscriptions/orders-sub",
        "attempt": None,
        "fallback_id": "f-1",
        "fallback_time": None,
        "raw": None,
    }
    arguments.update(kwargs)
    message = {"data": "aGk=", "messageId": "m-1"}
    dispatch = _pubsub.route(app, names or Names(), message, **arguments)
    return dispatch.trigger.value, dispatch.name, dispatch.event


def handler(event: object) -> None:
    """A registration target; routing tests only look at the decision."""


def test_a_topic_handler_comes_before_queue_handlers() -> None:
    app = App("t")
    app.queue("orders-sub")(handler)
    app.queue("orders")(handler)
    app.topic("orders")(handler)
    assert route(app)[:2] == ("topic", "orders")


def test_a_queue_handler_is_found_by_subscription_then_by_topic() -> None:
    app = App("t")
    app.queue("orders")(handler)
    assert route(app)[:2] == ("queue", "orders")
    app.queue("orders-sub")(handler)
    trigger, name, msg = route(app)
    assert (trigger, name) == ("queue", "orders-sub")
    assert isinstance(msg, Message)
    assert msg.source == "orders-sub"


def test_exact_names_come_before_wildcards() -> None:
    app = App("t")
    app.topic("*")(handler)
    app.queue("orders-sub")(handler)
    assert route(app)[:2] == ("queue", "orders-sub")
    assert route(app, subscription=None)[:2] == ("topic", "orders")


def test_names_map_resource_names_to_logical_names() -> None:
    app = App("t")
    app.topic("orders")(handler)
    names = Names({"projects/shop/topics/orders-prod-7": "orders"})
    trigger, name, msg = route(app, names, topic="projects/shop/topics/orders-prod-7")
    assert (trigger, name) == ("topic", "orders")
    assert isinstance(msg, Message)
    assert msg.source == "orders"


def test_a_schedule_named_after_the_topic_claims_its_messages() -> None:
    app = App("t")
    app.topic("orders")(handler)
    app.schedule("orders", cron="0 3 * * *")(handler)
    trigger, name, tick = route(app)
    assert (trigger, name) == ("schedule", "orders")
    assert isinstance(tick, ScheduleEvent)


def test_an_explicit_topic_option_wins_over_a_name_match() -> None:
    app = App("t")
    app.schedule("orders", cron="0 3 * * *")(handler)
    app.schedule("nightly", cron="0 3 * * *", topic="orders")(handler)
    assert route(app)[:2] == ("schedule", "nightly")


def test_scheduler_message_becomes_a_schedule_event() -> None:
    seen: list[ScheduleEvent] = []
    app = App("t")
    app.schedule("nightly-report", cron="0 3 * * *")(lambda tick: seen.append(tick))
    polyserve_gcp.cloudevent(app)(structured(load("pubsub-scheduler-tick.json")))
    (tick,) = seen
    assert tick.id == "9001"
    assert tick.name == "nightly-report"
    assert tick.payload == {"scope": "all"}
    assert tick.scheduled_at == dt.datetime(2024, 5, 2, 3, 0, 0, 412000, tzinfo=dt.timezone.utc)
    assert tick.is_past_due is False


def test_no_matching_registration_is_unsupported() -> None:
    app = App("t")
    app.topic("payments")(handler)
    with pytest.raises(UnsupportedEventError) as info:
        polyserve_gcp.cloudevent(app)(event())
    assert info.value.description == {
        "trigger": "topic",
        "topic": "orders",
        "subscription": "orders-sub",
    }


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"data": "%%%"}, "invalid_base64"),
        ({"attributes": {"n": 1}}, "malformed_event"),
        ({"attributes": ["a"]}, "malformed_event"),
        ({"orderingKey": 5}, "malformed_event"),
        ({"publishTime": "yesterday"}, "malformed_event"),
    ],
)
def test_malformed_messages_raise_malformed_event_error(
    recorder: Recorder, change: dict[str, Any], code: str
) -> None:
    with pytest.raises(MalformedEventError) as info:
        polyserve_gcp.cloudevent(recorder.app)(event(**change))
    assert info.value.code == code
    assert recorder.seen == []


@pytest.mark.parametrize("data", [{"subscription": "s"}, {"message": "text"}, b"\x00\x01"])
def test_data_without_a_message_is_malformed(recorder: Recorder, data: Any) -> None:
    from cloudevents.http import CloudEvent

    raw = CloudEvent({"type": _pubsub.EVENT_TYPE, "source": "//pubsub.googleapis.com/x"}, data)
    with pytest.raises(MalformedEventError):
        polyserve_gcp.cloudevent(recorder.app)(raw)


@pytest.mark.parametrize(("attempt", "expected"), [(None, 1), (1, 1), ("4", 4), (0, 1)])
def test_delivery_attempt(attempt: Any, expected: int) -> None:
    msg = _pubsub.read_message({"messageId": "m"}, source="s", attempt=attempt)
    assert msg.attempt == expected


@pytest.mark.parametrize("attempt", ["many", True, [1]])
def test_unreadable_delivery_attempt_is_malformed(attempt: Any) -> None:
    with pytest.raises(MalformedEventError, match="deliveryAttempt"):
        _pubsub.read_message({"messageId": "m"}, source="s", attempt=attempt)


def test_message_without_any_id_is_malformed() -> None:
    with pytest.raises(MalformedEventError, match="messageId"):
        _pubsub.read_message({"data": ""}, source="s")


def test_snake_case_fields_are_read_too() -> None:
    msg = _pubsub.read_message(
        {"message_id": "m-9", "publish_time": "2024-01-01T00:00:01Z", "ordering_key": "k"},
        source="s",
    )
    assert (msg.id, msg.group_key) == ("m-9", "k")
    assert msg.enqueued_at == dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc)


def test_a_failing_handler_raises_so_the_platform_retries() -> None:
    app = App("t")

    @app.topic("orders")
    def fail(msg: Message) -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError, match="database down"):
        polyserve_gcp.cloudevent(app)(event())


def test_push_envelope_shape() -> None:
    assert _pubsub.is_push_envelope(load("pubsub-push.json"))
    assert not _pubsub.is_push_envelope({"message": {}})
    assert not _pubsub.is_push_envelope({"message": "x", "subscription": "s"})
    assert not _pubsub.is_push_envelope([])
