"""``polyserve serve`` over real HTTP: a handler's send reaches the app's own consumer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

APP = """
from typing import Any

from polyserve import App, Context, Message

app = App("jobs")
jobs = app.queue_out("jobs")
done: list[Any] = []


@app.post("/jobs", status=202)
def submit(body: dict[str, Any], context: Context) -> dict[str, Any]:
    jobs.send(body, attributes={"kind": "resize"}, key=body["user"], trace=context.trace)
    return body


@app.queue("jobs", max_attempts=3)
def work(message: Message, context: Context) -> None:
    done.append({
        "body": message.json(), "attempt": message.attempt, "key": message.group_key,
        "kind": message.attributes.get("kind"), "trace_id": context.trace_id,
    })
    if message.attempt == 1:
        raise RuntimeError("first attempt fails")


@app.get("/done")
def seen() -> list[Any]:
    return done
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "jobsapp.py").write_text(textwrap.dedent(APP))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "POLYSERVE_OUTBOUND"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyserve._cli", "serve", "jobsapp:app",
         "--app-dir", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/done", timeout=1)
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
def test_a_send_is_delivered_and_retried_locally(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        answer = client.post(
            "/jobs", json={"user": "u1", "size": 3}, headers={"traceparent": TRACEPARENT}
        )
        assert answer.status_code == 202
        deadline = time.monotonic() + 15
        done: list[Any] = []
        while len(done) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            done = client.get("/done").json()
        expected = {
            "body": {"user": "u1", "size": 3}, "key": "u1", "kind": "resize",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        }  # fmt: skip
        # The first delivery fails and is retried after the one-second backoff.
        assert done == [{**expected, "attempt": 1}, {**expected, "attempt": 2}]
        assert client.get("/_polyserve/messages").json() == []  # delivered: nothing pending
