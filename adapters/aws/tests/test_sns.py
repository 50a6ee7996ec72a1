"""SNS notifications: one message per record, failures raise."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Message
from polyserve.errors import MalformedEventError, UnsupportedEventError

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


def test_notification_becomes_a_message(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("sns.json")

    assert polyserve_aws.handler(recorder.app)(raw, lambda_context) is None

    message: Message = recorder.last
    assert message.id == "5e6f7a8b-9c0d-5e1f-a2b3-c4d5e6f7a8b9"
    assert message.json() == {"pet_id": 12, "name": "Biscuit"}
    assert message.subject == "New arrival"
    assert message.attributes == {"shelter": "north", "count": "3", "blob": "AQID"}
    assert message.enqueued_at == dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=dt.timezone.utc)
    assert message.source == "pet-alerts"
    assert message.attempt == 1
    assert message.raw is raw["Records"][0]


def test_a_failing_handler_raises(lambda_context: FakeLambdaContext) -> None:
    app = App("sns")

    @app.topic("pet-alerts")
    def on_alert(message: Message) -> None:
        raise RuntimeError("downstream is down")

    with pytest.raises(RuntimeError, match="downstream is down"):
        polyserve_aws.handler(app)(load("sns.json"), lambda_context)


def test_unregistered_topic_raises(lambda_context: FakeLambdaContext) -> None:
    with pytest.raises(UnsupportedEventError, match="pet-alerts"):
        polyserve_aws.handler(App("none"))(load("sns.json"), lambda_context)


def test_names_map_the_topic(lambda_context: FakeLambdaContext) -> None:
    app = App("sns")
    seen: list[str] = []
    app.topic("alerts")(lambda message: seen.append(message.id))

    polyserve_aws.handler(app, names={"pet-alerts": "alerts"})(load("sns.json"), lambda_context)

    assert seen == ["5e6f7a8b-9c0d-5e1f-a2b3-c4d5e6f7a8b9"]


@pytest.mark.parametrize(
    "change", [{"Message": None}, {"Timestamp": "noon"}, {"TopicArn": 1}, {"Subject": []}]
)
def test_malformed_notification_raises(
    recorder: Recorder, lambda_context: FakeLambdaContext, change: dict[str, object]
) -> None:
    raw = load("sns.json")
    raw["Records"][0]["Sns"] |= change

    with pytest.raises(MalformedEventError):
        polyserve_aws.handler(recorder.app)(raw, lambda_context)
    assert recorder.seen == []
