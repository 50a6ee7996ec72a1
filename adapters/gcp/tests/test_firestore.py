"""Firestore document CloudEvents (JSON and protobuf) -> StreamRecord with plain values."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

import pytest
from adapters.gcp.tests.support import encode_document_event, load, structured

import polyserve_gcp
from polyserve import App, ChangeType, StreamRecord
from polyserve.errors import MalformedEventError
from polyserve_gcp import _firestore
from polyserve_gcp._context import make_context
from polyserve_gcp._names import Names

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc

CTX = make_context(App("t"), "", 60, None)


def test_created_document_becomes_an_insert(recorder: Recorder) -> None:
    raw = structured(load("firestore-created.json"))

    polyserve_gcp.cloudevent(recorder.app)(raw)

    record = recorder.last
    assert isinstance(record, StreamRecord)
    assert record.id == "5e0a1c2d-0001"
    assert record.change is ChangeType.INSERT
    assert record.source == "pets"
    assert record.keys == {"id": "rex", "path": "pets/rex"}
    assert record.old is None
    assert record.sequence == "2024-05-01T10:00:00.000001Z"
    assert record.occurred_at == dt.datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC)
    assert record.raw is raw
    new = dict(record.new or {})
    assert math.isnan(new.pop("ratio"))
    assert new == {
        "name": "Rex",
        "age": 7,
        "weight": 12.5,
        "vaccinated": True,
        "chip": None,
        "born": dt.datetime(2017, 3, 4, 5, 6, 7, 891234, tzinfo=UTC),
        "photo": b"\x89PNG",
        "owner": "projects/petstore-prod/databases/(default)/documents/owners/ada",
        "home": {"latitude": 51.5, "longitude": -0.12},
        "tags": ["good", -3],
        "vet": {"city": "Paris", "visits": []},
    }


def test_updated_document_in_a_subcollection(recorder: Recorder) -> None:
    polyserve_gcp.cloudevent(recorder.app)(structured(load("firestore-updated.json")))
    record = recorder.last
    assert record.change is ChangeType.MODIFY
    assert record.source == "pets"
    assert record.keys == {"id": "rex", "path": "owners/ada/pets/rex"}
    assert record.old == {"name": "Rex", "age": 7}
    assert record.new == {"name": "Rex", "age": 8}


def test_deleted_with_auth_context_becomes_a_remove(recorder: Recorder) -> None:
    polyserve_gcp.cloudevent(recorder.app)(structured(load("firestore-deleted.json")))
    record = recorder.last
    assert record.change is ChangeType.REMOVE
    assert record.old == {"name": "Rex"}
    assert record.new is None
    assert record.sequence is None


def test_protobuf_data_is_decoded(recorder: Recorder) -> None:
    sample = load("firestore-written-protobuf.json")
    assert sample["datacontenttype"] == "application/protobuf"

    polyserve_gcp.cloudevent(recorder.app)(structured(sample))

    record = recorder.last
    assert record.change is ChangeType.MODIFY  # written, with both snapshots
    assert record.old == {"name": "Rex", "age": 7}
    assert record.new == {"name": "Rex", "age": 8}
    assert record.sequence == "2024-05-02T11:00:00Z"


def test_protobuf_and_json_give_the_same_record() -> None:
    sample = load("firestore-created.json")
    as_protobuf = dict(sample, datacontenttype="application/protobuf")
    del as_protobuf["data"]
    import base64

    as_protobuf["data_base64"] = base64.b64encode(encode_document_event(sample["data"])).decode()
    first, second = (
        _firestore.to_event(structured(s), CTX, {}).event for s in (sample, as_protobuf)
    )
    assert isinstance(first, StreamRecord)
    assert isinstance(second, StreamRecord)
    assert first.new is not None
    assert second.new is not None
    # NaN never equals itself; every other field must match exactly.
    assert {k: v for k, v in first.new.items() if k != "ratio"} == {
        k: v for k, v in second.new.items() if k != "ratio"
    }
    assert (first.change, first.keys, first.sequence) == (
        second.change,
        second.keys,
        second.sequence,
    )


def test_json_data_in_binary_mode_arrives_as_bytes_and_is_parsed() -> None:
    from cloudevents.http import CloudEvent

    sample = load("firestore-updated.json")
    attributes = {k: v for k, v in sample.items() if k != "data"}
    raw = CloudEvent(attributes, json.dumps(sample["data"]).encode())
    record = _firestore.to_event(raw, CTX, {}).event
    assert isinstance(record, StreamRecord)
    assert record.new == {"name": "Rex", "age": 8}


def read(data: dict[str, Any], kind: str = "written", path: str | None = "c/d") -> StreamRecord:
    dispatch = _firestore.read_change(
        data, kind, Names(), path=path, event_id="e", time=None, raw=None
    )
    assert isinstance(dispatch.event, StreamRecord)
    return dispatch.event


DOC = {"name": "projects/p/databases/(default)/documents/c/d", "fields": {}}


@pytest.mark.parametrize(
    ("data", "change"),
    [
        ({"value": DOC}, ChangeType.INSERT),
        ({"value": DOC, "oldValue": {}}, ChangeType.INSERT),
        ({"oldValue": DOC}, ChangeType.REMOVE),
        ({"value": DOC, "oldValue": DOC}, ChangeType.MODIFY),
        ({}, ChangeType.UPSERT),
    ],
)
def test_written_is_derived_from_the_snapshots(data: dict[str, Any], change: ChangeType) -> None:
    assert read(data).change is change


def test_a_document_without_fields_is_an_empty_dict() -> None:
    assert read({"value": {"name": DOC["name"]}}).new == {}


def test_the_path_comes_from_subject_or_the_snapshot_name(recorder: Recorder) -> None:
    sample = load("firestore-updated.json")
    del sample["document"]
    polyserve_gcp.cloudevent(recorder.app)(structured(sample))
    assert recorder.last.keys["path"] == "owners/ada/pets/rex"
    assert read({"value": DOC}, path=None).keys == {"id": "d", "path": "c/d"}


def test_names_map_the_collection_path_or_id() -> None:
    app = App("t")
    seen: list[str] = []
    app.stream("ada-pets")(lambda record: seen.append(record.source))
    app.stream("animals")(lambda record: seen.append(record.source))
    sample = structured(load("firestore-updated.json"))
    polyserve_gcp.cloudevent(app, names={"owners/ada/pets": "ada-pets"})(sample)
    polyserve_gcp.cloudevent(app, names={"pets": "animals"})(sample)
    assert seen == ["ada-pets", "animals"]


@pytest.mark.parametrize("path", ["", "pets", "owners/ada/pets", "pets//rex"])
def test_invalid_document_paths_are_malformed(path: str) -> None:
    with pytest.raises(MalformedEventError, match="document path"):
        read({"value": {"fields": {}}}, path=path)


@pytest.mark.parametrize(
    "value",
    [
        {"integerValue": "x"},
        {"integerValue": True},
        {"booleanValue": "yes"},
        {"doubleValue": "lots"},
        {"doubleValue": None},
        {"timestampValue": "noon"},
        {"bytesValue": "%%"},
        {"stringValue": 3},
        {"arrayValue": {"values": {"a": 1}}},
        {"mapValue": {"fields": [1]}},
        {"mapValue": "x"},
        "plain",
    ],
)
def test_malformed_values(value: Any) -> None:
    with pytest.raises(MalformedEventError):
        _firestore.plain(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"nullValue": "NULL_VALUE"}, None),
        ({"integerValue": 5}, 5),
        ({"integerValue": "-9223372036854775808"}, -9223372036854775808),
        ({"doubleValue": 3}, 3.0),
        ({"doubleValue": "Infinity"}, math.inf),
        ({"doubleValue": "-Infinity"}, -math.inf),
        ({"geoPointValue": {}}, {"latitude": 0.0, "longitude": 0.0}),
        ({"arrayValue": {}}, []),
        ({"mapValue": {}}, {}),
        ({}, None),
        ({"vectorValue": {"values": [1]}}, {"vectorValue": {"values": [1]}}),
    ],
)
def test_plain_values(value: dict[str, Any], expected: Any) -> None:
    assert _firestore.plain(value) == expected


def test_snapshots_and_fields_must_be_objects() -> None:
    with pytest.raises(MalformedEventError, match="document object"):
        read({"value": ["x"]})
    with pytest.raises(MalformedEventError, match="fields"):
        read({"value": {"fields": ["x"]}})


def test_garbage_protobuf_is_malformed(recorder: Recorder) -> None:
    sample = load("firestore-written-protobuf.json")
    sample["data_base64"] = "AQID"
    with pytest.raises(MalformedEventError, match="DocumentEventData"):
        polyserve_gcp.cloudevent(recorder.app)(structured(sample))


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("google.cloud.firestore.document.v1.created", "created"),
        ("google.cloud.firestore.document.v1.written.withAuthContext", "written"),
        ("google.cloud.firestore.document.v1.exploded", None),
        ("google.cloud.datastore.entity.v1.created", None),
    ],
)
def test_kinds(event_type: str, kind: str | None) -> None:
    assert _firestore.kind_of(event_type) == kind


def test_values_nested_past_the_stack_are_malformed() -> None:
    value: dict[str, Any] = {"nullValue": None}
    for _ in range(100_000):
        value = {"arrayValue": {"values": [value]}}
    with pytest.raises(MalformedEventError, match="nested too deeply"):
        _firestore.plain(value)
