"""S3 event notifications sent straight to the function."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, StorageAction, StorageEvent
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve_aws import _s3

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


def test_created_object(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    raw = load("s3-put.json")

    assert polyserve_aws.handler(recorder.app)(raw, lambda_context) is None

    event: StorageEvent = recorder.last
    assert event.action is StorageAction.CREATED
    assert event.bucket == "pet-photos"
    assert event.key == "uploads/Tom & Jerry/café photo.jpg"
    assert event.size == 48213
    assert event.etag == "9b2cf535f27731c974343645a3985328"
    assert event.version == "3HL4kqtJvjVBH40Nrjfkd"
    assert event.id == "7Q4K2M9X1B3C5D6E/00663213A0B1C2D3E4"
    assert event.occurred_at == dt.datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=dt.timezone.utc)
    assert event.raw is raw["Records"][0]


def test_deleted_object(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    polyserve_aws.handler(recorder.app)(load("s3-delete.json"), lambda_context)

    event: StorageEvent = recorder.last
    assert event.action is StorageAction.DELETED
    assert event.size is None
    assert event.etag is None


@pytest.mark.parametrize(
    ("event_name", "action"),
    [
        ("ObjectCreated:CompleteMultipartUpload", StorageAction.CREATED),
        ("ObjectRemoved:Delete", StorageAction.DELETED),
        ("LifecycleExpiration:Delete", StorageAction.DELETED),
        ("ObjectRestore:Completed", StorageAction.RESTORED),
        ("LifecycleTransition", StorageAction.ARCHIVED),
        ("IntelligentTiering", StorageAction.ARCHIVED),
        ("ObjectTagging:Put", StorageAction.METADATA_UPDATED),
        ("ObjectAcl:Put", StorageAction.METADATA_UPDATED),
        ("ObjectRestore:Post", None),
        ("Replication:OperationFailedReplication", None),
    ],
)
def test_event_names_map_to_actions(event_name: str, action: StorageAction | None) -> None:
    assert _s3.storage_action(event_name) is action


def test_unmapped_event_name_is_unsupported(lambda_context: FakeLambdaContext) -> None:
    raw = load("s3-put.json")
    raw["Records"][0]["eventName"] = "ObjectRestore:Post"

    with pytest.raises(UnsupportedEventError, match="ObjectRestore:Post"):
        polyserve_aws.handler(App("s3"))(raw, lambda_context)


def test_handler_is_chosen_by_bucket_and_action(lambda_context: FakeLambdaContext) -> None:
    app = App("s3")
    created: list[str] = []
    app.storage("pet-photos", actions=["created"])(lambda event: created.append(event.key))
    handler = polyserve_aws.handler(app)

    handler(load("s3-put.json"), lambda_context)
    with pytest.raises(UnsupportedEventError):
        handler(load("s3-delete.json"), lambda_context)

    assert created == ["uploads/Tom & Jerry/café photo.jpg"]


def test_names_map_the_bucket_by_arn(lambda_context: FakeLambdaContext) -> None:
    app = App("s3")
    seen: list[str] = []
    app.storage("photos")(lambda event: seen.append(event.bucket))

    polyserve_aws.handler(app, names={"arn:aws:s3:::pet-photos": "photos"})(
        load("s3-put.json"), lambda_context
    )

    assert seen == ["pet-photos"]


def test_a_failing_handler_raises(lambda_context: FakeLambdaContext) -> None:
    app = App("s3")

    @app.storage("pet-photos")
    def on_object(event: StorageEvent) -> None:
        raise OSError("thumbnailer crashed")

    with pytest.raises(OSError, match="thumbnailer crashed"):
        polyserve_aws.handler(app)(load("s3-put.json"), lambda_context)


@pytest.mark.parametrize(
    "change",
    [
        {"s3": None},
        {"eventName": None},
        {"eventTime": "today"},
        {"s3": {"bucket": {}, "object": {}}},
    ],
)
def test_malformed_record_raises(change: dict[str, object]) -> None:
    record = load("s3-put.json")["Records"][0] | change

    with pytest.raises(MalformedEventError):
        _s3.storage_event(record, {})
