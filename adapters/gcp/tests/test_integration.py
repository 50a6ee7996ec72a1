"""The adapter under a real functions-framework server, over real HTTP.

Three servers run ``live_app.py`` (HTTP, CloudEvent and background signatures) on
free loopback ports. CloudEvents go in both binary and structured mode, built
with the ``cloudevents`` SDK as Eventarc sends them. The app writes what its
handlers received to a file, which the tests read back.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from adapters.gcp.tests.support import encode_document_event, functions_framework, load
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

if TYPE_CHECKING:
    from collections.abc import Iterator

    from polyserve_testkit.servers import GcloudEmulator

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).parent / "live_app.py"
TIMEOUT = httpx.Timeout(10.0)


class Live:
    """The running servers and the observations file their handlers write."""

    def __init__(self, observations: Path, urls: dict[str, str]) -> None:
        self.observations = observations
        self.urls = urls
        self.client = httpx.Client(timeout=TIMEOUT, trust_env=False)

    def seen(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        if not self.observations.exists():
            return []
        lines = [json.loads(line) for line in self.observations.read_text().splitlines()]
        return [
            o for o in lines if o["kind"] == kind and all(o.get(k) == v for k, v in match.items())
        ]

    def one(self, kind: str, **match: Any) -> dict[str, Any]:
        found = self.seen(kind, **match)
        assert len(found) == 1, f"expected one {kind} observation matching {match}, got {found}"
        return found[0]

    def send(self, server: str, event: CloudEvent, *, binary: bool) -> httpx.Response:
        headers, body = to_binary(event) if binary else to_structured(event)
        return self.client.post(self.urls[server], headers=headers, content=body)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("gcp-live")
    observations = workdir / "observations.jsonl"
    env = {"POLYSERVE_OBSERVATIONS": str(observations), "FUNCTION_TIMEOUT_SEC": "120"}
    with (
        functions_framework(SOURCE, "handle_http", "http", workdir, env) as http_url,
        functions_framework(SOURCE, "handle_event", "cloudevent", workdir, env) as event_url,
        functions_framework(SOURCE, "handle_background", "event", workdir, env) as bg_url,
    ):
        live = Live(observations, {"http": http_url, "event": event_url, "background": bg_url})
        try:
            yield live
        finally:
            live.client.close()


# -- HTTP ------------------------------------------------------------------------


def test_http_get_with_decoded_path_and_repeated_query(live: Live) -> None:
    response = live.client.get(
        live.urls["http"] + "/hello/w%C3%B6rld%20x?tag=a&tag=b",
        headers={"Function-Execution-Id": "exec-1"},
    )
    assert response.status_code == 200
    assert response.json() == {"hello": "wörld x", "tags": ["a", "b"], "invocation_id": "exec-1"}


def test_http_binary_body_cookies_and_client(live: Live) -> None:
    body = bytes(range(256))
    response = live.client.post(
        live.urls["http"] + "/echo",
        content=body,
        headers={"content-type": "application/octet-stream", "x-forwarded-for": "203.0.113.9"},
    )
    assert response.status_code == 201
    assert response.content == body
    assert response.headers["x-client"] == "203.0.113.9"
    assert response.headers.get_list("set-cookie") == [
        "a=1; HttpOnly; Path=/; SameSite=Lax; Secure",
        "b=2; HttpOnly; Path=/; SameSite=Lax; Secure",
    ]


def test_http_errors_are_problem_json(live: Live) -> None:
    response = live.client.get(live.urls["http"] + "/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_http_stream_reaches_the_client_chunk_by_chunk(live: Live) -> None:
    url = live.urls["http"]
    with live.client.stream("GET", url + "/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers.get("transfer-encoding") == "chunked"
        chunks = response.iter_raw()
        assert next(chunks) == b"first\n"
        # The handler is waiting: a second request lets it go on.
        assert live.client.post(url + "/release").status_code == 204
        assert b"".join(chunks) == b"second\n"


def test_pubsub_push_is_acknowledged_with_204(live: Live) -> None:
    envelope = load("pubsub-push.json")
    envelope["message"]["messageId"] = "push-1"
    response = live.client.post(live.urls["http"] + "/_pubsub/orders", json=envelope)
    assert response.status_code == 204
    seen = live.one("topic", id="push-1")
    assert base64.b64decode(seen["body"]) == bytes([0, 159, 146, 150, 255])
    assert seen["attempt"] == 2
    assert seen["source"] == "orders"
    assert seen["provider"] == "gcp"


def test_failing_push_answers_500_so_pubsub_redelivers(live: Live) -> None:
    envelope = {
        "message": {"data": base64.b64encode(b"fail").decode(), "messageId": "push-2"},
        "subscription": "projects/p/subscriptions/adoptions",
    }
    response = live.client.post(live.urls["http"] + "/_pubsub", json=envelope)
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"


def test_scheduler_http_job(live: Live) -> None:
    response = live.client.post(
        live.urls["http"] + "/_scheduler",
        content=b'{"scope": "all"}',
        headers={
            "X-CloudScheduler": "true",
            "User-Agent": "Google-Cloud-Scheduler",
            "X-CloudScheduler-JobName": "nightly-report",
            "X-CloudScheduler-ScheduleTime": "2024-05-02T03:00:00Z",
            "Function-Execution-Id": "sched-1",
        },
    )
    assert response.status_code == 204
    seen = live.one("schedule", id="sched-1")
    assert seen["payload"] == {"scope": "all"}
    assert seen["scheduled_at"] == "2024-05-02 03:00:00+00:00"


# -- CloudEvents -----------------------------------------------------------------


def cloud_event(sample: str, event_id: str, **changes: Any) -> CloudEvent:
    raw = load(sample)
    data = raw.pop("data", None)
    raw.update(changes, id=event_id)
    return CloudEvent(raw, data)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "structured"])
def test_pubsub_cloud_event(live: Live, binary: bool) -> None:
    event_id = f"ps-{binary}"
    event = cloud_event("pubsub-message-published.json", event_id)
    event.data["message"]["messageId"] = event_id
    response = live.send("event", event, binary=binary)
    assert response.status_code == 200
    seen = live.one("queue", id=event_id)
    assert json.loads(base64.b64decode(seen["body"])) == {"pet_id": 1, "adopter": "Ada"}
    assert seen["attributes"] == {"tenant": "acme", "priority": "5"}
    assert seen["attempt"] == 3
    assert seen["source"] == "adoptions"
    assert seen["group_key"] == "pet-1"
    assert seen["invocation_id"] == event_id


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "structured"])
def test_storage_cloud_event(live: Live, binary: bool) -> None:
    event_id = f"gcs-{binary}"
    response = live.send("event", cloud_event("storage-deleted.json", event_id), binary=binary)
    assert response.status_code == 200
    seen = live.one("storage", id=event_id)
    assert seen["action"] == "deleted"
    assert (seen["bucket"], seen["key"], seen["size"]) == (
        "pet-photos-prod",
        "pets/1/photo 1.jpg",
        48213,
    )


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "structured"])
def test_firestore_json_cloud_event(live: Live, binary: bool) -> None:
    event_id = f"fs-json-{binary}"
    response = live.send("event", cloud_event("firestore-updated.json", event_id), binary=binary)
    assert response.status_code == 200
    seen = live.one("stream", id=event_id)
    assert seen["change"] == "modify"
    assert seen["keys"] == {"id": "rex", "path": "owners/ada/pets/rex"}
    assert (seen["old"], seen["new"]) == ({"name": "Rex", "age": 7}, {"name": "Rex", "age": 8})


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "structured"])
def test_firestore_protobuf_cloud_event(live: Live, binary: bool) -> None:
    event_id = f"fs-pb-{binary}"
    data = encode_document_event(load("firestore-created.json")["data"])
    event = cloud_event("firestore-created.json", event_id, datacontenttype="application/protobuf")
    event.data = data
    response = live.send("event", event, binary=binary)
    assert response.status_code == 200
    seen = live.one("stream", id=event_id)
    assert seen["change"] == "insert"
    assert seen["new"]["born"] == "2017-03-04 05:06:07.891234+00:00"
    assert seen["new"]["tags"] == ["good", -3]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "structured"])
def test_any_other_type_is_a_cloud_event(live: Live, binary: bool) -> None:
    event_id = f"other-{binary}"
    event = CloudEvent(
        {"type": "com.example.pets.adopted", "source": "/shelter/7", "id": event_id,
         "shelterregion": "north"},
        {"pet": 7},
    )  # fmt: skip
    assert live.send("event", event, binary=binary).status_code == 200
    seen = live.one("cloudevent", id=event_id)
    assert (seen["type"], seen["source"], seen["data"]) == (
        "com.example.pets.adopted",
        "/shelter/7",
        {"pet": 7},
    )
    assert seen["extensions"] == {"shelterregion": "north"}


def test_malformed_event_answers_400(live: Live) -> None:
    event = cloud_event("pubsub-message-published.json", "bad-1")
    event.data["message"]["data"] = "%%%"
    response = live.send("event", event, binary=True)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_base64"
    assert response.json()["invocation_id"] == "bad-1"


def test_failing_handler_answers_500_so_the_platform_retries(live: Live) -> None:
    event = cloud_event("pubsub-message-published.json", "fail-1")
    event.data["message"]["data"] = base64.b64encode(b"fail").decode()
    assert live.send("event", event, binary=False).status_code == 500


# -- background (legacy) functions --------------------------------------------------


def test_background_event(live: Live) -> None:
    sample = load("background-pubsub.json")
    sample["context"]["eventId"] = "bg-1"
    sample["context"]["resource"]["name"] = "projects/p/topics/orders"
    response = live.client.post(live.urls["background"], json=sample)
    assert response.status_code == 200
    seen = live.one("topic", id="bg-1")
    assert json.loads(base64.b64decode(seen["body"])) == {"pet_id": 2, "adopter": "Grace"}


def test_background_function_receives_converted_cloud_events(live: Live) -> None:
    # functions-framework turns a known CloudEvent into (data, context) for an event function.
    response = live.send("background", cloud_event("storage-finalized.json", "bg-gcs"), binary=True)
    assert response.status_code == 200
    assert live.one("storage", id="bg-gcs")["action"] == "created"


# -- end to end through the Pub/Sub emulator -----------------------------------------


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> GcloudEmulator:
    # The emulator is not installable offline, so it is optional in CI too: without
    # gcloud or PUBSUB_EMULATOR_HOST the test skips (the fixture says why).
    if not (os.environ.get("PUBSUB_EMULATOR_HOST") or shutil.which("gcloud")):
        pytest.skip("the Pub/Sub emulator needs gcloud or PUBSUB_EMULATOR_HOST; neither is here")
    emulator: GcloudEmulator = request.getfixturevalue("pubsub_emulator")
    return emulator


def test_emulator_pushes_a_published_message(live: Live, emulator: GcloudEmulator) -> None:
    project = emulator.project_id
    api = f"{emulator.url}/v1/projects/{project}"
    topic = f"projects/{project}/topics/orders"
    client = live.client
    assert client.put(f"{api}/topics/orders").status_code in (200, 409)
    subscription = {
        "topic": topic,
        "pushConfig": {"pushEndpoint": live.urls["http"] + "/_pubsub/orders"},
        "ackDeadlineSeconds": 10,
    }
    assert client.put(f"{api}/subscriptions/orders-push", json=subscription).status_code in (
        200,
        409,
    )
    published = client.post(
        f"{api}/topics/orders:publish",
        json={"messages": [{"data": base64.b64encode(b"via emulator").decode(),
                            "attributes": {"e2e": "yes"}}]},
    )  # fmt: skip
    assert published.status_code == 200
    (message_id,) = published.json()["messageIds"]
    deadline = time.monotonic() + 20
    while not live.seen("topic", id=message_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    seen = live.one("topic", id=message_id)
    assert base64.b64decode(seen["body"]) == b"via emulator"
    assert seen["attributes"] == {"e2e": "yes"}


def test_a_mounted_apps_lifespan_starts_once_and_shuts_down_with_the_worker(
    tmp_path: Path,
) -> None:
    log = tmp_path / "lifespan.log"
    env = {"POLYSERVE_LIFESPAN_LOG": str(log)}
    source = Path(__file__).parent / "mount_app.py"
    with functions_framework(source, "handle_http", "http", tmp_path, env) as url:
        with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
            for _ in range(5):
                assert client.get(url + "/anything").text == "ok"
        started = log.read_text().split()
        assert started[0] == "startup"
    # Stopping the server (SIGTERM, as Cloud Run sends) lets the worker exit, which
    # sends the lifespan shutdown, in the same process.
    assert log.read_text().split() == ["startup", started[1], "shutdown", started[1]]
