"""polyserve_gcp.testing: every built event parses through the entry point that receives it,
and has the shape of the samples shipped in ``tests/events``."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import flask
import pytest
from adapters.gcp.tests import test_conformance as conformance
from adapters.gcp.tests.support import EVENTS, recording_app, sample_kind

from polyserve import HttpRequest, StreamRecord
from polyserve_gcp.testing import BUILDERS, Targets, build

if TYPE_CHECKING:
    from pathlib import Path

_SAMPLES = {
    "http": "http-post-json.json",
    "pubsub": "pubsub-message-published.json",
    "pubsub_push": "pubsub-push.json",
    "scheduler": "pubsub-scheduler-tick.json",
    "scheduler_job": "scheduler-job-executed.json",
    "storage": "storage-finalized.json",
    "firestore": "firestore-updated.json",
    "legacy_pubsub": "background-pubsub.json",
    "legacy_storage": "background-storage-finalize.json",
    "legacy_firestore": "background-firestore-write.json",
}


def _keys(value: Any, prefix: str = "") -> set[str]:
    # Field paths, without the contents of free-form maps (attributes, headers, fields).
    if not isinstance(value, dict):
        return set()
    out = set()
    for key, item in value.items():
        out.add(prefix + key)
        if key not in _FREE:
            out |= _keys(item, prefix + key + ".")
    return out


_FREE = {"attributes", "headers", "fields"}


def test_every_kind_has_a_sample() -> None:
    assert set(_SAMPLES) == set(BUILDERS)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_built_event_parses(kind: str, tmp_path: Path) -> None:
    event = build(kind)
    sample = json.loads((EVENTS / _SAMPLES[kind]).read_text())
    assert sample_kind(event) == sample_kind(sample)
    assert _keys(event) <= _keys(sample) | {"data.message.attributes", "data.oldValue"}
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(event))
    conformance.test_sample_parses(path)


def test_overrides() -> None:
    event = build("pubsub", data={"id": 2}, topic="payments", attempt=4)
    assert event["source"].endswith("/topics/payments")
    assert event["data"]["deliveryAttempt"] == 4
    with pytest.raises(TypeError, match=r"unknown override\(s\) topc for 'pubsub'"):
        build("pubsub", topc="x")
    with pytest.raises(KeyError, match="unknown GCP event kind"):
        build("pubsub2")


def test_firestore_values_are_typed_as_firestore_does() -> None:
    recorder = recording_app()
    when = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    value = {"n": 7, "x": 1.5, "ok": True, "none": None, "at": when, "raw": b"\x00", "tags": ["a"]}
    Targets(recorder.app).call(build("firestore", document="pets/rex", value=value))
    record = recorder.last
    assert isinstance(record, StreamRecord)
    assert record.new == value | {"at": when}
    assert record.keys == {"id": "rex", "path": "pets/rex"}


def test_targets_answer_http_with_the_flask_response() -> None:
    recorder = recording_app()
    response = Targets(recorder.app).call(
        build("http", method="post", path="/pets/1", query={"q": "a b"}, body={"a": 1})
    )
    assert isinstance(response, flask.Response)
    assert response.status_code == 200
    request = recorder.last
    assert isinstance(request, HttpRequest)
    assert (request.path, request.query.get("q"), request.json()) == ("/pets/1", "a b", {"a": 1})
    with pytest.raises(ValueError, match="not a Google Cloud event"):
        Targets(recorder.app).call({"Records": []})
