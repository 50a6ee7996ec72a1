"""polyserve_cloudflare.testing builders: every built event parses as the shipped samples do,
has their shape, and reaches the Worker's handler through ``dispatch``."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from adapters.cloudflare.tests.test_events import EVENTS, parse

from polyserve import (
    App,
    HttpRequest,
    Message,
    ScheduleEvent,
    StorageEvent,
    UnsupportedEventError,
)
from polyserve.testing import AsyncTestClient, TestClient
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.testing import (
    BUILDERS,
    FakeBatch,
    FakeExecutionContext,
    FakeResponse,
    FakeRuntime,
    answer,
    build,
    dispatch,
    invoke,
    native,
)

if TYPE_CHECKING:
    from polyserve_cloudflare import Entrypoint

    from .conftest import Seen

_SAMPLES = {
    "fetch": "fetch-post-json.json",
    "queue": "queue-mixed-bodies.json",
    "r2_notification": "queue-r2-notifications.json",
    "scheduled": "scheduled-nightly.json",
}


def _keys(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, list):
        return set().union(*(_keys(v, prefix) for v in value)) if value else set()
    if not isinstance(value, dict) or prefix.endswith("body."):
        return set()
    out = set()
    for key, item in value.items():
        out.add(prefix + key)
        out |= _keys(item, prefix + key + ".")
    return out


def test_every_kind_has_a_sample() -> None:
    assert set(_SAMPLES) == set(BUILDERS)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_built_event_parses_and_has_the_samples_shape(kind: str) -> None:
    event = build(kind)
    sample = json.loads((EVENTS / _SAMPLES[kind]).read_text(encoding="utf-8"))
    assert _keys(event) <= _keys(sample) | {"body"}
    assert parse(event)


def test_fetch_overrides_and_bodies() -> None:
    request = parse(build("fetch", method="post", path="/pets/été", query={"q": "a b"}, body=[1]))
    assert isinstance(request, HttpRequest)
    assert (request.method, request.path, request.query.get("q")) == ("POST", "/pets/été", "a b")
    assert request.json() == [1]
    assert request.client == "198.51.100.23"
    binary = parse(build("fetch", method="PUT", body=b"\x89PNG\xff"))
    assert isinstance(binary, HttpRequest)
    assert binary.body == b"\x89PNG\xff"


def test_queue_bodies_keep_their_javascript_types() -> None:
    for body, raw in [({"a": 1}, b'{"a":1}'), ("text", b"text"), (b"\x00\xff", b"\x00\xff")]:
        messages = parse(build("queue", body=body, attempts=3))
        assert isinstance(messages, list)
        (message,) = messages
        assert isinstance(message, Message)
        assert (message.body, message.attempt, message.source) == (raw, 3, "orders")


def test_unknown_kinds_and_overrides_are_errors() -> None:
    with pytest.raises(TypeError, match=r"unknown override\(s\) attempt for 'queue'"):
        build("queue", attempt=2)
    with pytest.raises(KeyError, match="unknown Cloudflare event kind"):
        build("cron")
    with pytest.raises(ValueError, match="not a Workers event"):
        native({"Records": []})


def test_dispatch_runs_each_handler(worker: Entrypoint, seen: Seen) -> None:
    response = asyncio.run(dispatch(worker, build("fetch", path="/items/7")))
    assert answer(response)["status"] == 200
    assert response.json() == {"id": 7}
    batch = asyncio.run(dispatch(worker, build("queue", body="fail")))
    assert answer(batch)["messages"][0]["settled"] == "retried"
    assert asyncio.run(dispatch(worker, build("scheduled"))) is None
    assert isinstance(seen.schedules[0], ScheduleEvent)


def test_r2_notifications_reach_storage_handlers() -> None:
    app = App("files")
    got: list[StorageEvent] = []

    @app.storage("photos")
    def on_photo(event: StorageEvent) -> None:
        got.append(event)

    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    asyncio.run(dispatch(worker, build("r2_notification", key="a/b.jpg")))
    assert [(e.bucket, e.key) for e in got] == [("photos", "a/b.jpg")]


def test_client_through_the_worker(app: App, seen: Seen) -> None:
    client = TestClient(app, provider="cloudflare")
    response = client.get("/items/4")
    assert response.json() == {"id": 4}
    assert isinstance(response.native, FakeResponse)
    assert response.native.status == 200
    assert client.get("/nope").native.status == 404
    cookies = client.get("/cookies")
    set_cookies = cookies.native.headers.getSetCookie()
    assert [c.split(";", 1)[0] for c in set_cookies] == ["a=1", "b=2"]
    assert client.cookies == {"a": "1", "b": "2"}
    batch = client.queue_native("orders", "fail", attempts=2)
    assert isinstance(batch, FakeBatch)
    assert batch.messages[0].settled == "retried"
    assert client.queue_native("orders", {"n": 1}).messages[0].settled == "acked"
    assert client.schedule_native("nightly") is None
    with pytest.raises(ValueError, match="schedule failed"):
        client.schedule_native("broken")
    with pytest.raises(LookupError, match="has no cron="):
        client.schedule_native("weekly")
    assert [m.body for m in seen.messages] == [b"fail", b'{"n":1}']
    assert [s.name for s in seen.schedules] == ["nightly"]


def test_async_client_through_the_worker(app: App, seen: Seen) -> None:
    async def main() -> None:
        async with AsyncTestClient(app, provider="cloudflare") as client:
            assert (await client.post("/json", json={"a": 1})).native.json() == {"got": {"a": 1}}
            batch = await client.event_native("queue", body="x", queue="orders")
            assert batch.messages[0].settled == "acked"

    asyncio.run(main())
    assert [m.body for m in seen.messages] == [b"x"]


def test_invoke_answers_as_json(app: App) -> None:
    out = invoke(app, build("fetch", path="/items/3"))
    assert (out["status"], json.loads(out["body"])) == (200, {"id": 3})
    assert invoke(app, build("queue", body="fail"))["messages"][0]["settled"] == "retried"
    assert invoke(app, build("scheduled")) is None
    with pytest.raises(UnsupportedEventError, match="not a Workers event"):
        invoke(app, {"Records": []})
