"""Background (1st gen) events: (data, context) -> typed events."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from adapters.gcp.tests.support import background_args, load

# functions-framework's context class ships without type information.
from google.cloud.functions.context import (  # type: ignore[import-untyped]
    Context as LegacyContext,
)

import polyserve_gcp
from polyserve import (
    App,
    ChangeType,
    CloudEvent,
    Message,
    StorageAction,
    StorageEvent,
    StreamRecord,
)
from polyserve.errors import MalformedEventError

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


def run(recorder: Recorder, sample: str) -> Any:
    data, context = background_args(load(sample))
    assert polyserve_gcp.background(recorder.app)(data, context) is None
    return recorder.last


def test_pubsub_publish_becomes_a_message(recorder: Recorder) -> None:
    msg = run(recorder, "background-pubsub.json")
    assert isinstance(msg, Message)
    assert msg.id == "1144231683168617"
    assert msg.json() == {"pet_id": 2, "adopter": "Grace"}
    assert msg.attributes == {"tenant": "acme"}
    assert msg.enqueued_at == dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)
    assert msg.source == "adoptions"
    assert msg.attempt == 1
    data, context = msg.raw
    assert data["@type"].endswith("PubsubMessage")
    assert isinstance(context, LegacyContext)


def test_the_older_pubsub_type_and_a_string_resource() -> None:
    seen: list[Message] = []
    app = App("t")
    app.queue("adoptions")(lambda message: seen.append(message))
    context = LegacyContext(
        eventId="1", timestamp="2024-01-01T00:00:00Z",
        eventType="providers/cloud.pubsub/eventTypes/topic.publish",
        resource="projects/p/topics/adoptions",
    )  # fmt: skip
    polyserve_gcp.background(app)({"data": "aGk="}, context)
    assert seen[0].body == b"hi"


def test_storage_finalize_becomes_a_created_event(recorder: Recorder) -> None:
    event = run(recorder, "background-storage-finalize.json")
    assert isinstance(event, StorageEvent)
    assert event.id == "1147091835525187"
    assert event.action is StorageAction.CREATED
    assert (event.bucket, event.key, event.size) == ("pet-photos-prod", "pets/1/photo 1.jpg", 48213)
    assert event.occurred_at == dt.datetime(2024, 5, 1, 10, 0, 0, 200000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "action"), [("exists", StorageAction.CREATED), ("not_exists", StorageAction.DELETED)]
)
def test_object_change_is_told_apart_by_resource_state(
    recorder: Recorder, state: str, action: StorageAction
) -> None:
    context = LegacyContext(
        eventId="9", timestamp="2024-01-01T00:00:00Z",
        eventType="providers/cloud.storage/eventTypes/object.change",
        resource="projects/_/buckets/photos/objects/a.jpg",
    )  # fmt: skip
    data = {"name": "a.jpg", "resourceState": state}
    polyserve_gcp.background(recorder.app)(data, context)
    event = recorder.last
    assert (event.action, event.bucket, event.key) == (action, "photos", "a.jpg")


def test_firestore_write_becomes_a_stream_record(recorder: Recorder) -> None:
    record = run(recorder, "background-firestore-write.json")
    assert isinstance(record, StreamRecord)
    assert record.change is ChangeType.INSERT  # an empty oldValue: the document is new
    assert record.source == "pets"
    assert record.keys == {"id": "rex", "path": "owners/ada/pets/rex"}
    assert record.new == {"name": "Rex", "age": 1}
    assert record.old is None
    assert record.occurred_at == dt.datetime(2024, 5, 2, 11, 0, 0, 500000, tzinfo=UTC)


def test_other_types_become_cloud_events(recorder: Recorder) -> None:
    event = run(recorder, "background-firebase-auth.json")
    assert isinstance(event, CloudEvent)
    assert event.type == "providers/firebase.auth/eventTypes/user.create"
    assert event.source == "projects/petstore-prod"
    assert event.id == "c2d7e0b4-1f3a-4e5b-8c6d-9e0f1a2b3c4d"
    assert event.time == dt.datetime(2024, 5, 1, 9, 59, 59, 100000, tzinfo=UTC)
    assert event.data["uid"] == "UvWx12"
    assert event.datacontenttype == "application/json"


@pytest.mark.parametrize(
    ("context", "data"),
    [
        (LegacyContext(eventId="1", eventType=""), {}),
        (LegacyContext(eventId="1", eventType="google.pubsub.topic.publish", resource=7), {}),
        (LegacyContext(eventId="1", eventType="google.pubsub.topic.publish", resource="t"), "x"),
        (LegacyContext(eventId="", eventType="google.pubsub.topic.publish", resource="t"), {}),
        (LegacyContext(eventId="1", eventType="google.storage.object.finalize", resource="r"), {}),
        (LegacyContext(eventId="1", eventType="x.y", timestamp="noon", resource="r"), {}),
    ],
)
def test_malformed_background_events(recorder: Recorder, context: LegacyContext, data: Any) -> None:
    with pytest.raises(MalformedEventError):
        polyserve_gcp.background(recorder.app)(data, context)


def test_a_context_object_of_another_shape_is_malformed(recorder: Recorder) -> None:
    target: Any = polyserve_gcp.background(recorder.app)  # Any: the argument breaks the protocol
    with pytest.raises(MalformedEventError, match="cannot read"):
        target({}, object())
