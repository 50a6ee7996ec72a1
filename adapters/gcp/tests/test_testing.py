"""polyserve_gcp.testing: every built event parses through the entry point that receives it,
and has the shape of the samples shipped in ``tests/events``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import flask
import pytest
from adapters.gcp.tests import test_conformance as conformance
from adapters.gcp.tests.support import EVENTS, sample_kind

from polyserve import App, HttpRequest, Message, ScheduleEvent, StreamRecord
from polyserve import HttpResponse as PolyResponse
from polyserve.testing import AsyncTestClient, TestClient
from polyserve_gcp.testing import BUILDERS, Targets, build, invoke
from polyserve_testkit.recorder import Recorder

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
    recorder = Recorder.catch_all()
    when = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    value = {"n": 7, "x": 1.5, "ok": True, "none": None, "at": when, "raw": b"\x00", "tags": ["a"]}
    Targets(recorder.app).call(build("firestore", document="pets/rex", value=value))
    record = recorder.last
    assert isinstance(record, StreamRecord)
    assert record.new == value | {"at": when}
    assert record.keys == {"id": "rex", "path": "pets/rex"}


def test_targets_answer_http_with_the_flask_response() -> None:
    recorder = Recorder.catch_all()
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


def _shop() -> tuple[App, list[Any]]:
    app, got = App("shop"), []

    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int) -> dict[str, int]:
        return {"id": pet_id}

    @app.get("/login")
    def login() -> PolyResponse:
        return PolyResponse.json({"ok": True}).set_cookie("a", "1").set_cookie("b", "2")

    @app.queue("orders")
    async def orders(msg: Message) -> None:
        got.append(msg.json())
        if msg.json().get("fail"):
            raise ValueError("boom")

    @app.schedule("nightly", cron="0 3 * * *")
    def nightly(event: ScheduleEvent) -> None:
        got.append(event.name)

    return app, got


def test_client_through_functions_framework_targets() -> None:
    app, got = _shop()
    client = TestClient(app, provider="gcp")
    response = client.get("/pets/4", params={"q": "1"})
    assert response.json() == {"id": 4}
    assert isinstance(response.native, flask.Response)
    assert response.native.status_code == 200
    assert client.get("/nope").native.status_code == 404
    login = client.get("/login")
    assert [c.split(";", 1)[0] for c in login.native.headers.getlist("Set-Cookie")] == [
        "a=1",
        "b=2",
    ]
    assert client.cookies == {"a": "1", "b": "2"}
    assert client.queue_native("orders", {"n": 1}) is None
    with pytest.raises(ValueError, match="boom"):
        client.queue_native("orders", {"fail": True}, attempt=2)
    assert client.schedule_native("nightly") is None
    assert (
        client.event_native("pubsub_push", data={"n": 3}, subscription="orders").status_code == 204
    )
    assert got == [{"n": 1}, {"fail": True}, "nightly", {"n": 3}]


def test_async_client_through_functions_framework_targets() -> None:
    app, got = _shop()

    async def main() -> None:
        async with AsyncTestClient(app, provider="gcp") as client:
            assert (await client.get("/pets/5")).native.get_json() == {"id": 5}
            await client.queue_native("orders", {"n": 2})

    asyncio.run(main())
    assert got == [{"n": 2}]


def test_invoke_answers_as_json() -> None:
    app, _ = _shop()
    answer = invoke(app, build("http", path="/pets/3"))
    assert answer["status"] == 200
    assert json.loads(answer["body"]) == {"id": 3}
    assert invoke(app, build("pubsub_push", data={"n": 1}, subscription="orders"))["status"] == 204
    assert invoke(app, build("pubsub", data={"n": 1})) is None
