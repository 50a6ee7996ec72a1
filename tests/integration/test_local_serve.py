"""The README's first command: the example served over real HTTP on localhost."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from polyserve_testkit.servers import free_ports

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = free_ports(1)[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyserve._cli", "serve", "petstore.app:app",
         "--app-dir", str(ROOT / "examples" / "petstore"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"the local server did not start:\n{out}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.integration
def test_crud_round_trip_over_real_http(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        created = client.post("/pets", json={"name": "Rex", "species": "dog", "age": 3})
        assert created.status_code == 201
        pet = created.json()
        assert pet["name"] == "Rex"
        fetched = client.get(f"/pets/{pet['id']}")
        assert fetched.json() == pet
        listed = client.get("/pets", params={"species": "dog"})
        assert pet in listed.json()
        replaced = client.put(f"/pets/{pet['id']}", json={"name": "Max", "species": "dog"})
        assert replaced.json()["name"] == "Max"
        assert client.delete(f"/pets/{pet['id']}").status_code == 204
        gone = client.get(f"/pets/{pet['id']}")
        assert gone.status_code == 404
        assert gone.json()["code"] == "pet_not_found"
        assert gone.headers["content-type"] == "application/problem+json"


@pytest.mark.integration
def test_bad_input_over_real_http(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        bad_json = client.post(
            "/pets", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        assert (bad_json.status_code, bad_json.json()["code"]) == (400, "invalid_json")
        invalid = client.post("/pets", json={"name": "", "species": "dog"})
        assert (invalid.status_code, invalid.json()["code"]) == (422, "validation_error")
        wrong_type = client.post("/pets", content=b"x", headers={"content-type": "text/plain"})
        assert wrong_type.status_code == 415
        not_allowed = client.patch("/pets/1", json={})
        assert not_allowed.status_code == 405
        assert "GET" in not_allowed.headers["allow"]
        sneaky = client.get("/pets/1%2F..%2F2")
        assert (sneaky.status_code, sneaky.json()["code"]) == (400, "invalid_path")
        for path in ("/pets%2F1", "/pets/%FF%FE", "/pets/%zz", "/pets/%2e%2e"):
            refused = client.get(path)
            assert (refused.status_code, refused.json()["code"]) == (400, "invalid_path"), path
        deep = client.post(
            "/pets", content=b"[" * 100_000 + b"]" * 100_000,
            headers={"content-type": "application/json"},
        )  # fmt: skip
        assert (deep.status_code, deep.json()["code"]) == (400, "invalid_json")
        cors = client.options(
            "/pets",
            headers={"origin": "https://x.example", "access-control-request-method": "POST"},
        )
        assert cors.status_code == 204
        assert cors.headers["access-control-allow-origin"] == "*"


@pytest.mark.integration
def test_the_readme_drives_the_queue_and_the_schedule(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        pet = client.post("/pets", json={"name": "Biscuit", "species": "cat"}).json()
        sent = client.post(
            "/_polyserve/queues/adoptions", json={"pet_id": pet["id"], "adopter": "Ann"}
        )
        assert sent.status_code == 202
        message_id = sent.json()["id"]
        deadline = time.monotonic() + 10
        while client.get(f"/_polyserve/messages/{message_id}").json()["state"] != "done":
            assert time.monotonic() < deadline, "the adoption was not delivered"
            time.sleep(0.05)
        assert client.get(f"/pets/{pet['id']}").json()["adopted"] is True
        report = client.post("/_polyserve/schedules/nightly-report")
        assert report.status_code == 200
        assert report.json()["result"]["adopted"] >= 1
        # An adoption of a pet that does not exist fails and is redelivered with backoff.
        failing = client.post(
            "/_polyserve/queues/adoptions", json={"pet_id": 10**6, "adopter": "B"}
        )
        failing_id = failing.json()["id"]
        deadline = time.monotonic() + 10
        while client.get(f"/_polyserve/messages/{failing_id}").json()["attempt"] < 2:
            assert time.monotonic() < deadline, "the failed adoption was not redelivered"
            time.sleep(0.1)
        state = client.get(f"/_polyserve/messages/{failing_id}").json()
        assert state["state"] == "pending"
        assert "LookupError" in state["reason"]
        bad = client.post("/_polyserve/storage/photos", content=b"{")
        assert bad.status_code == 404  # the petstore registers no storage handler
        problem = client.post("/_polyserve/queues/adoptions", content=b"\xff\xfe")
        assert problem.status_code == 400
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.json()["code"] == "malformed_event"
