"""Cloud Storage CloudEvents -> StorageEvent."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from adapters.gcp.tests.support import load, structured

import polyserve_gcp
from polyserve import App, StorageAction, StorageEvent
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve_gcp import _storage

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


def test_finalized_object_becomes_a_created_event(recorder: Recorder) -> None:
    raw = structured(load("storage-finalized.json"))

    polyserve_gcp.cloudevent(recorder.app)(raw)

    event = recorder.last
    assert isinstance(event, StorageEvent)
    assert event.id == "11223344556677"
    assert event.action is StorageAction.CREATED
    assert event.bucket == "pet-photos-prod"
    assert event.key == "pets/1/photo 1.jpg"
    assert event.size == 48213
    assert event.etag == "CMDm0Yz8/4UDEAE="
    assert event.version == "1714557600123456"
    assert event.content_type == "image/jpeg"
    assert event.occurred_at == dt.datetime(2024, 5, 1, 10, 0, 0, 200000, tzinfo=dt.timezone.utc)
    assert event.raw is raw


@pytest.mark.parametrize(
    ("sample", "action"),
    [
        ("storage-finalized.json", StorageAction.CREATED),
        ("storage-deleted.json", StorageAction.DELETED),
        ("storage-metadata-updated.json", StorageAction.METADATA_UPDATED),
        ("storage-archived.json", StorageAction.ARCHIVED),
    ],
)
def test_each_type_maps_to_its_action(
    recorder: Recorder, sample: str, action: StorageAction
) -> None:
    polyserve_gcp.cloudevent(recorder.app)(structured(load(sample)))
    assert recorder.last.action is action


def test_the_handler_is_chosen_by_bucket_and_action() -> None:
    created: list[str] = []
    deleted: list[str] = []
    app = App("t")
    app.storage("pet-photos-prod", actions=["created"])(lambda event: created.append(event.key))
    app.storage("pet-photos-prod", actions=["deleted"])(lambda event: deleted.append(event.key))
    target = polyserve_gcp.cloudevent(app)
    target(structured(load("storage-finalized.json")))
    target(structured(load("storage-deleted.json")))
    assert created == deleted == ["pets/1/photo 1.jpg"]
    with pytest.raises(UnsupportedEventError):
        target(structured(load("storage-archived.json")))


def test_names_map_the_bucket_and_the_event_keeps_the_real_one() -> None:
    seen: list[StorageEvent] = []
    app = App("t")
    app.storage("photos")(lambda event: seen.append(event))
    polyserve_gcp.cloudevent(app, names={"pet-photos-prod": "photos"})(
        structured(load("storage-finalized.json"))
    )
    assert seen[0].bucket == "pet-photos-prod"


def test_source_and_subject_stand_in_for_missing_fields(recorder: Recorder) -> None:
    sample = load("storage-finalized.json")
    sample["data"] = {"size": "0"}
    del sample["time"]
    polyserve_gcp.cloudevent(recorder.app)(structured(sample))
    event = recorder.last
    assert (event.bucket, event.key, event.size) == ("pet-photos-prod", "pets/1/photo 1.jpg", 0)
    assert event.etag is None
    assert event.version is None
    assert event.content_type is None


def test_updated_time_stands_in_for_the_event_time() -> None:
    data = load("storage-finalized.json")["data"]
    dispatch = _storage.read_object(
        data, StorageAction.CREATED, _names(), bucket=None, key=None, event_id="e", time=None,
        raw=None,
    )  # fmt: skip
    assert isinstance(dispatch.event, StorageEvent)
    assert dispatch.event.occurred_at == dt.datetime(
        2024, 5, 1, 10, 0, 0, 123000, tzinfo=dt.timezone.utc
    )


def test_unreadable_updated_time_is_malformed() -> None:
    data = dict(load("storage-finalized.json")["data"], updated="now")
    with pytest.raises(MalformedEventError, match="event time"):
        _storage.read_object(
            data, StorageAction.CREATED, _names(), bucket=None, key=None, event_id="e",
            time=None, raw=None,
        )  # fmt: skip


def _names() -> Any:
    from polyserve_gcp._names import Names

    return Names()


@pytest.mark.parametrize(
    "change",
    [
        {"size": "big"},
        {"size": 1.5},
        {"bucket": 7},
        {"etag": ["x"]},
    ],
)
def test_malformed_metadata(recorder: Recorder, change: dict[str, Any]) -> None:
    sample = load("storage-finalized.json")
    sample["data"].update(change)
    with pytest.raises(MalformedEventError):
        polyserve_gcp.cloudevent(recorder.app)(structured(sample))


def test_no_bucket_anywhere_is_malformed(recorder: Recorder) -> None:
    sample = load("storage-finalized.json")
    sample["source"] = "//storage.googleapis.com/somewhere-else"
    del sample["data"]["bucket"]
    with pytest.raises(MalformedEventError, match="bucket"):
        polyserve_gcp.cloudevent(recorder.app)(structured(sample))


def test_matches_only_object_events() -> None:
    assert _storage.matches(structured(load("storage-archived.json")))
    other = load("storage-archived.json")
    other["type"] = "google.cloud.storage.object.v1.restored"
    assert not _storage.matches(structured(other))
