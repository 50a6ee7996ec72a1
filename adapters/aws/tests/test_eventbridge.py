"""EventBridge: rule events, schedules and S3 via EventBridge."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, CloudEvent, ScheduleEvent, StorageAction, StorageEvent
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve_aws import _eventbridge

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


def test_custom_event_becomes_a_cloud_event(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("eventbridge-custom.json")

    assert polyserve_aws.handler(recorder.app)(raw, lambda_context) is None

    event: CloudEvent = recorder.last
    assert event.id == "3c2b1a09-f8e7-4d6c-b5a4-938271605f4e"
    assert event.source == "com.example.shelter"
    assert event.type == "Pet Adopted"
    assert event.specversion == "1.0"
    assert event.time == dt.datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    assert event.datacontenttype == "application/json"
    assert event.json() == {"pet_id": 12, "adopter": "Grace", "tags": ["indoor", "calm"]}
    assert event.extensions == {
        "account": "210987654321",
        "region": "eu-west-3",
        "resources": ["arn:aws:example:eu-west-3:210987654321:pet/12"],
    }
    assert event.raw is raw


def test_cloud_events_are_dispatched_by_type(lambda_context: FakeLambdaContext) -> None:
    app = App("eb")
    seen: list[str] = []
    app.cloudevent("Pet Adopted")(lambda event: seen.append(event.id))
    handler = polyserve_aws.handler(app)

    handler(load("eventbridge-custom.json"), lambda_context)
    with pytest.raises(UnsupportedEventError, match="Pet Returned"):
        handler(load("eventbridge-custom.json") | {"detail-type": "Pet Returned"}, lambda_context)

    assert seen == ["3c2b1a09-f8e7-4d6c-b5a4-938271605f4e"]


@pytest.mark.parametrize(
    ("name", "schedule"),
    [
        ("eventbridge-scheduled-rule.json", "nightly-report"),
        ("eventbridge-scheduler.json", "weekly-digest"),
    ],
)
def test_scheduled_events(
    recorder: Recorder, lambda_context: FakeLambdaContext, name: str, schedule: str
) -> None:
    raw = load(name)

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    event: ScheduleEvent = recorder.last
    assert isinstance(event, ScheduleEvent)
    assert event.name == schedule
    assert event.id == raw["id"]
    assert event.scheduled_at == dt.datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    assert event.payload is None
    assert event.is_past_due is False


def test_schedule_names_can_be_mapped(lambda_context: FakeLambdaContext) -> None:
    app = App("eb")
    seen: list[str] = []
    app.schedule("report", cron="0 3 * * *")(lambda event: seen.append(event.name))
    arn = "arn:aws:events:us-east-1:210987654321:rule/nightly-report"

    polyserve_aws.handler(app, names={arn: "report"})(
        load("eventbridge-scheduled-rule.json"), lambda_context
    )

    assert seen == ["report"]


def test_schedule_input_marker(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    polyserve_aws.handler(recorder.app)(load("scheduler-input.json"), lambda_context)

    event: ScheduleEvent = recorder.last
    assert event.name == "nightly-report"
    assert event.id == "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"
    assert event.scheduled_at == dt.datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    assert event.payload == {"dry_run": True}


def test_minimal_schedule_input_uses_the_request_id(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    polyserve_aws.handler(recorder.app)({"polyserve_schedule": "tick"}, lambda_context)

    event: ScheduleEvent = recorder.last
    assert (event.name, event.id, event.scheduled_at, event.payload) == (
        "tick",
        lambda_context.aws_request_id,
        None,
        None,
    )


def test_s3_object_created_via_eventbridge(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    polyserve_aws.handler(recorder.app)(load("eventbridge-s3-object-created.json"), lambda_context)

    event: StorageEvent = recorder.last
    assert event.action is StorageAction.CREATED
    assert event.bucket == "pet-photos"
    assert event.key == "thumbs/new arrival.jpg"
    assert event.size == 1024
    assert event.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert event.version == "vA1b2C3d4"
    assert event.id == "b5e1c9a2-3d4f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.mark.parametrize(
    ("detail_type", "action"),
    [
        ("Object Deleted", StorageAction.DELETED),
        ("Object Restore Completed", StorageAction.RESTORED),
        ("Object Storage Class Changed", StorageAction.ARCHIVED),
        ("Object Tags Added", StorageAction.METADATA_UPDATED),
    ],
)
def test_s3_detail_types(
    recorder: Recorder, lambda_context: FakeLambdaContext, detail_type: str, action: StorageAction
) -> None:
    raw = load("eventbridge-s3-object-created.json") | {"detail-type": detail_type}

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert recorder.last.action is action


def test_other_s3_detail_types_are_cloud_events(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("eventbridge-s3-object-created.json") | {"detail-type": "Object Restore Initiated"}

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert isinstance(recorder.last, CloudEvent)
    assert recorder.last.type == "Object Restore Initiated"


def test_a_failing_handler_raises(lambda_context: FakeLambdaContext) -> None:
    app = App("eb")

    @app.schedule("nightly-report")
    def report(event: ScheduleEvent) -> None:
        raise TimeoutError("report took too long")

    with pytest.raises(TimeoutError):
        polyserve_aws.handler(app)(load("eventbridge-scheduled-rule.json"), lambda_context)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("eventbridge-custom.json", {"id": None}),
        ("eventbridge-custom.json", {"time": "yesterday"}),
        ("eventbridge-custom.json", {"detail-type": 3}),
        ("eventbridge-scheduled-rule.json", {"resources": []}),
        ("eventbridge-s3-object-created.json", {"detail": {"bucket": {"name": "b"}}}),
        ("eventbridge-s3-object-created.json", {"detail": {"bucket": "b", "object": {}}}),
        ("scheduler-input.json", {"polyserve_schedule": 1}),
        ("scheduler-input.json", {"scheduled_at": 12}),
    ],
)
def test_malformed_events_raise(name: str, change: dict[str, Any]) -> None:
    raw = load(name) | change

    with pytest.raises(MalformedEventError):
        _eventbridge.to_event(raw, polyserve_aws_context(), {})


def polyserve_aws_context() -> Any:
    from polyserve_aws._context import to_context

    return to_context(None)
