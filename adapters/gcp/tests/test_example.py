"""The petstore example's ``main.py`` served by a real functions-framework server."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from adapters.gcp.tests.support import functions_framework
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

MAIN = Path(__file__).parents[3] / "examples" / "petstore" / "main.py"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    workdir = tmp_path_factory.mktemp("petstore-http")
    with (
        functions_framework(MAIN, "handle_http", "http", workdir) as url,
        httpx.Client(base_url=url, timeout=10.0, trust_env=False) as http,
    ):
        yield http


def test_crud_round_trip(client: httpx.Client) -> None:
    created = client.post("/pets", json={"name": "Rex", "species": "dog", "age": 3})
    assert created.status_code == 201
    pet = created.json()
    assert pet == {"id": pet["id"], "name": "Rex", "species": "dog", "age": 3, "adopted": False}
    url = f"/pets/{pet['id']}"

    assert client.get(url).json() == pet
    assert pet in client.get("/pets", params={"species": "dog"}).json()

    replaced = client.put(url, json={"name": "Rex", "species": "dog", "age": 4})
    assert replaced.status_code == 200
    assert replaced.json()["age"] == 4

    assert client.delete(url).status_code == 204
    missing = client.get(url)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "pet_not_found"


def test_validation_and_cors(client: httpx.Client) -> None:
    invalid = client.post("/pets", json={"name": "", "species": "dog"})
    assert invalid.status_code == 422
    assert invalid.json()["code"] == "validation_error"
    preflight = client.options(
        "/pets",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_adoption_pushed_by_pubsub(client: httpx.Client) -> None:
    pet = client.post("/pets", json={"name": "Tom", "species": "cat"}).json()
    body = json.dumps({"pet_id": pet["id"], "adopter": "Ada"}).encode()
    envelope: dict[str, Any] = {
        "message": {"data": base64.b64encode(body).decode(), "messageId": "adopt-1"},
        "subscription": "projects/petstore/subscriptions/adoptions",
    }
    assert client.post("/_pubsub", json=envelope).status_code == 204
    assert client.get(f"/pets/{pet['id']}").json()["adopted"] is True

    envelope["message"]["data"] = base64.b64encode(b'{"pet_id": 999999, "adopter": "X"}').decode()
    assert client.post("/_pubsub", json=envelope).status_code == 500  # redelivered later


def test_nightly_report_called_by_cloud_scheduler(client: httpx.Client) -> None:
    response = client.post(
        "/_scheduler",
        headers={"X-CloudScheduler": "true", "X-CloudScheduler-JobName": "nightly-report"},
    )
    assert response.status_code == 204


def test_event_target_serves_adoptions_and_the_schedule(tmp_path: Path) -> None:
    def published(topic: str, data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        payload = base64.b64encode(json.dumps(data).encode()).decode()
        event = CloudEvent(
            {
                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": f"//pubsub.googleapis.com/projects/petstore/topics/{topic}",
                "datacontenttype": "application/json",
            },
            {"message": {"data": payload, "messageId": topic}},
        )
        headers, body = to_binary(event)
        return dict(headers), body

    with (
        functions_framework(MAIN, "handle_event", "cloudevent", tmp_path) as url,
        httpx.Client(timeout=10.0, trust_env=False) as http,
    ):
        headers, body = published("nightly-report", {})
        assert http.post(url, headers=headers, content=body).status_code == 200
        # This process has no pet 999999: the handler raises and the platform retries.
        headers, body = published("adoptions", {"pet_id": 999999, "adopter": "Ada"})
        assert http.post(url, headers=headers, content=body).status_code == 500
        headers, body = published("unknown-topic", {})
        assert http.post(url, headers=headers, content=body).status_code == 400
