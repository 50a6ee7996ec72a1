"""polyserve_azure.testing: every built event parses as the shipped samples do, has their
shape, and reaches the generated function its ``target`` names."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests import test_events as conformance
from adapters.azure.tests.support import EVENTS

import polyserve_azure
from polyserve import (
    App,
    CloudEvent,
    HttpRequest,
    Message,
    ScheduleEvent,
    StorageEvent,
    StreamRecord,
)
from polyserve import HttpResponse as PolyResponse
from polyserve.testing import AsyncTestClient, TestClient
from polyserve_azure.testing import BUILDERS, FunctionHost, build, invoke, native

if TYPE_CHECKING:
    from pathlib import Path

    from polyserve_testkit.recorder import Recorder

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


def test_client_through_the_function_app() -> None:
    app, got = _shop()
    client = TestClient(app, provider="azure")
    response = client.get("/pets/4", headers={"x-a": "1"})
    assert response.json() == {"id": 4}
    assert isinstance(response.native, func.HttpResponse)
    assert response.native.status_code == 200
    assert client.get("/nope").native.status_code == 404
    login = client.get("/login")
    cookies = login.native.headers.getlist("Set-Cookie")
    assert [c.split(";", 1)[0] for c in cookies] == ["a=1", "b=2"]
    assert client.cookies == {"a": "1", "b": "2"}
    assert client.queue_native("orders", {"n": 1}) is None
    with pytest.raises(ValueError, match="boom"):
        client.queue_native("orders", {"fail": True}, attempt=2)
    assert client.schedule_native("nightly") is None
    with pytest.raises(LookupError, match="no function receives timerTrigger weekly"):
        client.schedule_native("weekly")
    assert got == [{"n": 1}, {"fail": True}, "nightly"]


def test_async_client_through_the_function_app() -> None:
    app, got = _shop()

    async def main() -> None:
        async with AsyncTestClient(app, provider="azure") as client:
            assert (await client.get("/pets/5")).native.get_body() == b'{"id":5}'
            await client.queue_native("orders", {"n": 2})
            await client.event_native("timer", name="nightly")

    asyncio.run(main())
    assert got == [{"n": 2}, "nightly"]


def test_invoke_answers_as_json() -> None:
    app, _ = _shop()
    answer = invoke(app, build("http", path="/pets/3"))
    assert answer["status"] == 200
    assert json.loads(answer["body"]) == {"id": 3}
    assert invoke(app, build("queue", body={"n": 1})) is None
