"""Outbound through Miniflare's real bindings, from the adapter inside Pyodide under Node.js.

``pyodide/run_miniflare.mjs`` starts Miniflare (Cloudflare's workerd) with two Queues
producers, an R2 bucket, a KV namespace and a D1 database, and passes the bindings
``getBindings()`` returns as the ``env`` of ``pyodide/miniflare_worker.py``, which runs in
Pyodide 0.28 with Cloudflare's ``workers`` SDK. Miniflare delivers the queues' batches to
a JavaScript consumer inside workerd (which cannot run Pyodide offline); it forwards each
batch to the Python Worker's ``queue()`` (polyserve's inbound adapter) and applies the
``ack()`` / ``retry()`` calls that come back to Miniflare's real messages.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

pytestmark = pytest.mark.integration

DRIVER = Path(__file__).parent / "pyodide" / "run_miniflare.mjs"
TIMEOUT = 180
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def run(pyodide_dir: Path, node_binary: str, sdk_dir: Path, miniflare_dir: Path) -> dict[str, Any]:
    """What run_miniflare.mjs reported (one JSON object on its last stdout line)."""
    try:
        done = subprocess.run(
            [node_binary, str(DRIVER), str(pyodide_dir), str(sdk_dir), str(miniflare_dir)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"run_miniflare.mjs did not finish in {TIMEOUT}s: {exc.stderr!r}")
    if done.returncode != 0:
        pytest.fail(f"run_miniflare.mjs failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def body(response: Mapping[str, Any]) -> Any:
    return json.loads(response["bodyText"])


def test_the_env_holds_miniflares_bindings(run: dict[str, Any]) -> None:
    assert run["bindings"] == ["DB", "EVENTS", "KV", "ORDERS", "THUMBS"]
    assert run["envIsWrapped"] is True  # the workers SDK wrapped them, as on Cloudflare


def test_sent_messages_reach_the_consumer_as_equal_messages(run: dict[str, Any]) -> None:
    assert run["orders"]["status"] == 202
    assert body(run["orders"]) == {"sent": 8, "trace_id": TRACE_ID}
    sent = [bytes.fromhex(m["body"]) for m in run["recorded"]["sent"]]
    received = run["recorded"]["orders"]
    first_deliveries = [m for m in received if m["attempt"] == 1]
    assert sorted(bytes.fromhex(m["body"]) for m in first_deliveries) == sorted(sent)
    assert sent[:5] == [
        b'{"id":1,"sku":"A","price":9.5,"tags":["x",null]}',
        "plain text é".encode(),
        b"\x00\x01\xff",
        b"utf-8 bytes",
        b'{"big":1152921504606846976,"one":1.0}',
    ]
    for message in received:
        assert message["source"] == "orders"
        assert message["attributes"] == {}
        assert message["enqueued"] is True
    assert len({m["id"] for m in first_deliveries}) == 7


def test_queues_content_types_are_the_ones_javascript_consumers_expect(
    run: dict[str, Any],
) -> None:
    (batch, *_) = [d for d in run["deliveries"] if d["queue"] == "orders"]
    # JSON as a JSON value, text as a string, bytes as an ArrayBuffer; JSON whose numbers
    # JavaScript would change as its text.
    assert batch["types"][:5] == ["json", "text", "arraybuffer", "arraybuffer", "text"]


def test_a_failed_message_is_retried_by_miniflare_and_redelivered(run: dict[str, Any]) -> None:
    retried = [m for m in run["recorded"]["orders"] if b'"retry"' in bytes.fromhex(m["body"])]
    assert [m["attempt"] for m in retried] == [1, 2]
    assert retried[0]["id"] == retried[1]["id"]
    verdicts = [
        d["verdicts"][retried[0]["id"]] for d in run["deliveries"] if retried[0]["id"] in d["ids"]
    ]
    assert verdicts == [{"action": "retry", "options": None}, {"action": "ack"}]
    assert all(d["error"] is None for d in run["deliveries"])


def test_the_delayed_message_arrives_in_a_later_batch(run: dict[str, Any]) -> None:
    (delayed,) = [d for d in run["deliveries"] if d["types"] == ["text"]]
    assert run["deliveries"].index(delayed) > 0
    assert [bytes.fromhex(m["body"]) for m in run["recorded"]["orders"]][-1] == b"delayed"


def test_topic_attributes_and_trace_reach_the_consumer(run: dict[str, Any]) -> None:
    (event,) = run["recorded"]["events"]
    assert bytes.fromhex(event["body"]) == b'{"kind":"created","id":1}'
    assert event["attributes"] == {
        "kind": "created",
        "content-type": "application/json",
        "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
    }
    assert event["trace_id"] == TRACE_ID


def test_too_large_is_refused_before_sending(run: dict[str, Any]) -> None:
    assert body(run["tooLarge"]) == {
        "error": "message_too_large",
        "limit": 128_000,
        "service": "Cloudflare Queues",
    }


def test_r2_put_get_stream_list_delete(run: dict[str, Any]) -> None:
    r2 = run["r2"]
    assert [r2[k]["status"] for k in ("put", "putOther", "putOutside")] == [201, 201, 201]
    assert body(r2["put"]) == {"key": "t/a b.jpg"}
    assert r2["get"]["bodyHex"] == r2["imageHex"]
    assert r2["get"]["headers"]["x-chunks"] == "65536,65536,65536,3392"
    assert r2["get"]["headers"]["x-stored-type"] == "image/jpeg"
    assert r2["get"]["headers"]["x-stored-by"] == "polyserve"
    assert r2["storedFromNode"] == {
        "equal": True,
        "contentType": "image/jpeg",
        "customMetadata": {"by": "polyserve"},
    }
    assert body(r2["list"]) == {"keys": ["t/a b.jpg", "t/c.txt"]}
    assert r2["delete"]["status"] == 204
    assert body(r2["listAfter"]) == {"keys": ["t/a b.jpg"]}
    assert r2["missing"]["status"] == 404
    assert body(r2["missing"])["code"] == "object_not_found"
    assert "cannot presign" in body(r2["url"])["error"]


def test_kv_and_d1_bindings_work_from_python(run: dict[str, Any]) -> None:
    assert body(run["kv"]) == {"value": "value of colour", "missing_is_null": True}
    assert run["kvFromNode"] == "value of colour"
    assert body(run["d1"]) == {"id": 1, "name": "Rex"}


def test_idempotent_handlers_keep_their_records_in_d1(run: dict[str, Any]) -> None:
    first, repeat, other, mismatch = run["payments"]
    assert [first["status"], repeat["status"], other["status"]] == [201, 201, 201]
    assert body(first) == body(repeat) == {"run": 1, "amount": 5}  # replayed, not run again
    assert body(other) == {"run": 2, "amount": 7}
    assert mismatch["status"] == 422
    assert body(mismatch)["code"] == "payload_mismatch"
    assert run["paymentRows"] == [{"status": "completed", "n": 2}]
