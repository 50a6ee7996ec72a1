"""Firebase Realtime Database CloudEvents become ``StreamRecord``s."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from adapters.gcp.tests.support import load, structured
from cloudevents.http import CloudEvent

import polyserve_gcp
from polyserve import App, ChangeType, StreamRecord
from polyserve.errors import MalformedEventError
from polyserve_gcp._firebase_database import apply_delta


def _run(event: CloudEvent, name: str = "pets") -> StreamRecord:
    app = App("rtdb")
    seen: list[StreamRecord] = []

    @app.stream(name)
    def on_change(record: StreamRecord) -> None:
        seen.append(record)

    polyserve_gcp.cloudevent(app)(event)
    (record,) = seen
    return record


def test_written_sample_is_a_modify_with_the_delta_applied() -> None:
    record = _run(structured(load("firebase-database-written.json")))
    assert record.change is ChangeType.MODIFY
    assert record.source == "pets"
    assert record.keys == {"id": "rex", "path": "pets/rex"}
    assert record.old == {"name": "Rex", "age": 6, "toys": {"ball": True, "rope": True}}
    assert record.new == {"name": "Rex", "age": 7, "toys": {"ball": True, "bone": True}}
    assert record.occurred_at == dt.datetime(2024, 5, 3, 8, 30, 0, 500000, tzinfo=dt.timezone.utc)
    assert record.id == "rtdb-0001"


def _event(kind: str, data: Any, subject: str = "refs/pets/rex") -> CloudEvent:
    return CloudEvent(
        {
            "type": f"google.firebase.database.ref.v1.{kind}",
            "source": "//firebasedatabase.googleapis.com/projects/_/locations/l/instances/i",
            "subject": subject,
            "id": "e",
        },
        data,
    )


@pytest.mark.parametrize(
    ("kind", "data", "change", "old", "new"),
    [
        ("created", {"data": None, "delta": {"a": 1}}, ChangeType.INSERT, None, {"a": 1}),
        ("deleted", {"data": {"a": 1}, "delta": None}, ChangeType.REMOVE, {"a": 1}, None),
        ("updated", {"data": {"a": 1}, "delta": {"b": 2}}, ChangeType.MODIFY, {"a": 1},
         {"a": 1, "b": 2}),
        ("written", {"data": None, "delta": 5}, ChangeType.INSERT, None, {"value": 5}),
        ("written", {"data": "x", "delta": None}, ChangeType.REMOVE, {"value": "x"}, None),
    ],
)  # fmt: skip
def test_kinds(kind: str, data: Any, change: ChangeType, old: Any, new: Any) -> None:
    record = _run(_event(kind, data))
    assert (record.change, record.old, record.new) == (change, old, new)


def test_nested_path_uses_the_parent_segment() -> None:
    record = _run(_event("created", {"delta": 1}, "refs/users/u1/pets/rex"))
    assert record.keys == {"id": "rex", "path": "users/u1/pets/rex"}


@pytest.mark.parametrize(
    ("data", "subject"), [([1], "refs/pets/rex"), ({}, "refs/"), ({}, "refs/a//b")]
)
def test_malformed(data: Any, subject: str) -> None:
    with pytest.raises(MalformedEventError):
        _run(_event("written", data, subject))


def test_delta_removes_keys_and_replaces_scalars() -> None:
    assert apply_delta({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}
    assert apply_delta({"a": 1}, {"a": None}) is None
    assert apply_delta(3, {"a": 1}) == {"a": 1}


def test_too_deep_a_delta_is_malformed() -> None:
    value: dict[str, Any] = {}
    delta: dict[str, Any] = {}
    cur_v, cur_d = value, delta
    for _ in range(100):
        cur_v["k"], cur_d["k"] = {}, {}
        cur_v, cur_d = cur_v["k"], cur_d["k"]
    with pytest.raises(MalformedEventError):
        apply_delta(value, delta)
