"""polyserve_azure.testing: every built event parses as the shipped samples do, has their
shape, and reaches the generated function its ``target`` names."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests import test_events as conformance
from adapters.azure.tests.support import EVENTS, Recorder

import polyserve_azure
from polyserve import CloudEvent, HttpRequest, Message, ScheduleEvent, StorageEvent, StreamRecord
from polyserve_azure.testing import BUILDERS, FunctionHost, build, native

if TYPE_CHECKING:
    from pathlib import Path

_SAMPLES = {
    "http": "http-get-query.json",
    "queue": "queue-storage.json",
    "servicebus": "servicebus-queue.json",
    "servicebus_topic": "servicebus-topic.json",  # and the queue's, a fuller message
    "eventgrid": "eventgrid-custom.json",
    "eventgrid_cloudevent": "eventgrid-cloudevent.json",
    "eventhub": "eventhub-batch.json",
    "blob": "blob-created.json",
    "timer": "timer.json",
    "cosmos": "cosmos-changes.json",
}

# Registrations of the recording app, by the builder that reaches them.
_TARGETS: dict[str, dict[str, Any]] = {
    "queue": {"queue": "orders"},
    "timer": {"name": "tick"},
}
_TYPES = {
    "http": HttpRequest,
    "queue": Message,
    "servicebus": Message,
    "servicebus_topic": Message,
    "eventgrid": CloudEvent,
    "eventgrid_cloudevent": CloudEvent,
    "eventhub": Message,
    "blob": StorageEvent,
    "timer": ScheduleEvent,
    "cosmos": StreamRecord,
}


def _keys(value: Any, prefix: str = "") -> set[str]:
    # Field paths, without the contents of free-form maps (headers, properties, data).
    if not isinstance(value, dict):
        return set()
    out = set()
    for key, item in value.items():
        out.add(prefix + key)
        if key not in ("headers", "query", "value", "params"):
            out |= _keys(item, prefix + key + ".")
    return out


def test_every_kind_has_a_sample() -> None:
    assert set(_SAMPLES) == set(BUILDERS)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_built_event_parses_and_has_the_samples_shape(kind: str, tmp_path: Path) -> None:
    event = build(kind)
    sample = json.loads((EVENTS / _SAMPLES[kind]).read_text())
    shapes = _keys(sample)
    if kind == "servicebus_topic":
        shapes |= _keys(json.loads((EVENTS / _SAMPLES["servicebus"]).read_text()))
    assert event["binding"] == sample["binding"]
    assert _keys(event) - {"target"} <= shapes
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(event))
    conformance.test_sample_parses(path)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_built_event_reaches_its_function(kind: str, recorder: Recorder) -> None:
    host = FunctionHost(polyserve_azure.function_app(recorder.app))
    host.call(build(kind, **_TARGETS.get(kind, {})))
    assert isinstance(recorder.last, _TYPES[kind])


def test_overrides_reach_the_event(recorder: Recorder) -> None:
    host = FunctionHost(polyserve_azure.function_app(recorder.app))
    host.call(build("queue", body={"id": 7}, queue="orders", attempt=3))
    message = recorder.last
    assert message.json() == {"id": 7}
    assert message.attempt == 3
    response = host.call(build("http", method="post", path="/pets/1", query={"q": "a b"}))
    assert isinstance(response, func.HttpResponse)
    request = recorder.last
    assert (request.method, request.path, request.query.get("q")) == ("POST", "/pets/1", "a b")


def test_native_gives_the_workers_objects() -> None:
    assert isinstance(native(build("http")), func.HttpRequest)
    assert isinstance(native(build("queue")), func.QueueMessage)
    assert isinstance(native(build("eventgrid")), func.EventGridEvent)
    with pytest.raises(ValueError, match="not an Azure Functions host document"):
        native({"Records": []})


def test_unknown_kinds_overrides_and_targets_are_errors(recorder: Recorder) -> None:
    with pytest.raises(TypeError, match=r"unknown override\(s\) queu for 'queue'"):
        build("queue", queu="x")
    with pytest.raises(KeyError, match="unknown Azure event kind"):
        build("sqs")
    host = FunctionHost(polyserve_azure.function_app(recorder.app))
    with pytest.raises(LookupError, match="no function receives queueTrigger payments"):
        host.call(build("queue", queue="payments"))
