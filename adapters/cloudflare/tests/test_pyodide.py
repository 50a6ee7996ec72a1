"""The adapter inside real Pyodide 0.28 (Python 3.13) under Node.js.

``pyodide/run_worker.mjs`` loads Pyodide from ``tests/node/node_modules/pyodide``,
copies polyserve's and the adapter's sources into its file system, unpacks
Cloudflare's ``workers`` SDK (PyPI's ``workers-runtime-sdk`` wheel, downloaded by
``.ci/install-servers`` into ``.cache/workers-runtime-sdk``) beside them, imports
``pyodide/worker.py`` as the Worker's main module and drives its ``Default``
class with real Fetch ``Request`` objects, a queue batch whose ``ack``/``retry``
are JavaScript functions, and a cron firing. The ``env`` holds Miniflare's real KV
namespace. No network is used. Stand-ins remain for what the runtime builds in:
``cloudflare:workers`` (``env``, ``waitUntil``) and the two modules the SDK imports
from the runtime's entrypoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

pytestmark = pytest.mark.integration

DRIVER = Path(__file__).parent / "pyodide" / "run_worker.mjs"
ROOT = Path(__file__).parents[3]
# The source folders run_worker.mjs copies into Pyodide, beside the SDK wheel.
SOURCES = (
    DRIVER.parent,
    ROOT / "src" / "polyserve",
    ROOT / "adapters/cloudflare/src/polyserve_cloudflare",
)
TIMEOUT = 120


def _inputs_key(pyodide_dir: Path, node_binary: str, sdk_dir: Path, miniflare_dir: Path) -> str:
    """A hash of everything run_worker.mjs runs: the sources, the SDK, Pyodide, Miniflare
    and Node."""
    digest = hashlib.sha256(f"{node_binary}\0".encode())
    for package in (pyodide_dir, miniflare_dir):
        digest.update((package / "package.json").read_bytes())
    files = [f for top in SOURCES for f in sorted(top.rglob("*")) if "__pycache__" not in f.parts]
    for file in [*files, *sorted(sdk_dir.glob("workers_runtime_sdk-*.whl"))]:
        if file.is_file():
            digest.update(f"{file}\0".encode() + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def run(pyodide_dir: Path, node_binary: str, sdk_dir: Path, miniflare_dir: Path) -> dict[str, Any]:
    """What run_worker.mjs reported (one JSON object on its last stdout line).

    Node runs it, whatever Python runs the tests, so the runs of one ``./dev test`` (one
    per Python version) share the report through the folder ``DEV_TEST_RUN_DIR`` names,
    under the hash of what it ran; the first run to need it runs the driver.
    """
    shared = os.environ.get("DEV_TEST_RUN_DIR")
    report = None
    if shared:
        key = _inputs_key(pyodide_dir, node_binary, sdk_dir, miniflare_dir)
        report = Path(shared) / f"pyodide-{key}.json"
        if report.exists():
            kept: dict[str, Any] = json.loads(report.read_text())
            return kept
    try:
        done = subprocess.run(
            [node_binary, str(DRIVER), str(pyodide_dir), str(sdk_dir), str(miniflare_dir)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"run_worker.mjs did not finish in {TIMEOUT}s: {exc.stderr!r}")
    if done.returncode != 0:
        pytest.fail(f"run_worker.mjs failed ({done.returncode}):\n{done.stderr[-4000:]}")
    last_line = done.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last_line)
    if report is not None:
        partial = report.with_name(f"{report.name}.{os.getpid()}.partial")
        partial.write_text(last_line)
        partial.replace(report)
    return result


def body(response: Mapping[str, Any]) -> Any:
    return json.loads(response["bodyText"])


def test_it_is_pyodide_with_python_3_13(run: dict[str, Any]) -> None:
    assert run["pyodide"] == "0.28.2"
    assert run["python"].startswith("3.13.")
    assert run["sdkIsReal"] is True
    assert run["sdk"].startswith("workers_runtime_sdk-")
    assert run["isWorkerEntrypoint"] is True
    assert run["envIsWrapped"] is True
    assert run["heavyModules"] == []


def test_get_with_path_parameter_query_headers_and_cookies(run: dict[str, Any]) -> None:
    get = run["http"]["get"]
    assert get["status"] == 200
    assert get["headers"] == {"content-type": "application/json", "x-pet": "7"}
    assert [c.split(";")[0] for c in get["setCookies"]] == ["seen=1", "pet=7"]
    assert body(get) == {
        "pet_id": 7,
        "path": "/pets/7",
        "tags": ["a", "b c"],
        "client": "203.0.113.5",
        "request_id": "8f00aa11bb22cc33-AMS",
        "accept": "application/json",
        "kv": "hello from Miniflare's KV",
        "provider": "cloudflare",
        "has_deadline": True,
    }


def test_post_json_to_a_sync_handler(run: dict[str, Any]) -> None:
    post = run["http"]["post"]
    assert post["status"] == 201
    assert body(post) == {"created": "Rex", "path": "/pets"}


def test_errors_are_problem_responses(run: dict[str, Any]) -> None:
    expected = {"invalid": (422, "name_required"), "notFound": (404, "not_found")}
    expected["badPath"] = expected["encodedSlash"] = (400, "invalid_path")
    for case, (status, code) in expected.items():
        response = run["http"][case]
        assert response["status"] == status, case
        assert response["headers"]["content-type"] == "application/problem+json"
        assert body(response)["code"] == code
        assert len(body(response)["invocation_id"]) == 32


def test_access_identity_is_read_only_when_trusted(run: dict[str, Any]) -> None:
    trusted = body(run["http"]["whoamiTrusted"])
    assert trusted == {"principal": ["cloudflare.access", "alice", "alice@example.com"]}
    assert body(run["http"]["whoamiIgnored"]) == {"principal": None}


def test_idempotent_replays_reach_only_their_own_caller(run: dict[str, Any]) -> None:
    orders = [body(response) for response in run["http"]["orders"]]
    assert [response["status"] for response in run["http"]["orders"]] == [201] * 4
    assert orders == [
        {"caller": "alice", "run": 1},
        {"caller": "bob", "run": 2},
        {"caller": "alice", "run": 1},
        {"caller": "bob", "run": 2},
    ]
    replayed = [r["headers"].get("idempotency-replayed") for r in run["http"]["orders"]]
    assert replayed == [None, None, "true", "true"]


def test_binary_body_round_trip(run: dict[str, Any]) -> None:
    binary = run["http"]["binary"]
    assert binary["status"] == 200
    assert bytes.fromhex(binary["bodyHex"]) == bytes(range(255, -1, -1))
    assert binary["headers"] == {"content-type": "application/octet-stream", "x-name": "café"}


def test_head_has_headers_and_no_body(run: dict[str, Any]) -> None:
    head = run["http"]["head"]
    assert head["status"] == 200
    assert head["bodyHex"] == ""
    assert int(head["headers"]["content-length"]) > 0


def test_the_runtime_request_wrapper_is_accepted(run: dict[str, Any]) -> None:
    wrapped = run["http"]["wrapped"]
    assert wrapped["status"] == 200
    assert body(wrapped)["pet_id"] == 9


def test_each_queue_message_is_acked_or_retried(run: dict[str, Any]) -> None:
    assert run["queue"]["error"] is None
    settled = {call["id"]: call["action"] for call in run["queue"]["calls"]}
    assert settled == {
        "m1": "ack",
        "m2": "retry",  # the handler raised
        "m3": "ack",
        "m4": "ack",
        "m5": "ack",
        "m6": "retry",  # a function body has no JSON form
        "m7": "ack",
    }
    assert len(run["queue"]["calls"]) == 7


def test_queue_bodies_and_metadata(run: dict[str, Any]) -> None:
    seen = {m["id"]: m for m in run["recorded"]["messages"] if m["source"] == "orders"}
    bodies = {key: bytes.fromhex(m["body"]) for key, m in seen.items()}
    assert bodies["m1"] == b'{"ok":true,"n":[1,null]}'
    assert bodies["m3"] == "plain text é".encode()
    assert bodies["m4"] == b"\x00\x01\xff"
    assert bodies["m5"] == b"\x07\x08"
    assert bodies["m7"] == b"null"
    assert "m6" not in seen
    assert seen["m2"]["attempt"] == 2
    assert seen["m1"]["enqueued_at"] == "2025-06-01T09:15:02.481000+00:00"


def test_retry_delay_reaches_javascript_as_a_plain_object(run: dict[str, Any]) -> None:
    assert run["delayedQueue"] == {
        "error": None,
        "calls": [{"id": "d1", "action": "retry", "options": {"delaySeconds": 30}}],
    }


def test_scheduled(run: dict[str, Any]) -> None:
    assert run["scheduled"]["error"] is None
    assert run["recorded"]["schedules"] == [
        {
            "id": "nightly@2025-06-01T03:00:00+00:00",
            "name": "nightly",
            "at": "2025-06-01T03:00:00+00:00",
        }
    ]
    assert "UnsupportedEventError" in run["scheduled"]["unknownCronError"]


def test_r2_notifications_reach_the_storage_handler(run: dict[str, Any]) -> None:
    assert run["r2"]["error"] is None
    settled = {call["id"]: call["action"] for call in run["r2"]["calls"]}
    assert settled == {"r1": "ack", "r2": "ack", "r3": "retry"}  # r3 has no object
    put, delete = run["recorded"]["storage"]
    assert put == {
        "id": "r1",
        "action": "created",
        "bucket": "photos",
        "key": "lake é.jpg",
        "size": 4096,
        "etag": "etag-1",
        "at": "2025-07-14T08:02:11.512000+00:00",
    }
    assert (delete["action"], delete["key"], delete["size"]) == ("deleted", "old.jpg", None)


def test_email_and_tail_reach_the_native_handler(run: dict[str, Any]) -> None:
    assert run["email"] == {"value": "email handled", "rejected": ["no such mailbox"]}
    assert run["tail"] == {"value": "tail handled"}
    assert run["recorded"]["native"] == [
        {"handler": "email", "from": "ada@example.com", "to": "orders@shop.example"},
        {"handler": "tail", "count": 2},
    ]


def test_a_streamed_body_is_read_chunk_by_chunk_while_the_handler_runs(
    run: dict[str, Any],
) -> None:
    # "first" was read before the release, so the handler was still running.
    assert run["http"]["stream"] == {
        "status": 200,
        "contentType": "text/event-stream",
        "isStream": True,
        "chunks": ["first", "second"],
        "releaseStatus": 204,
    }
