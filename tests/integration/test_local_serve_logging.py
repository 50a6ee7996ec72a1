"""``ctx.logger`` under ``polyserve serve``: one JSON object per line on stderr, as in the cloud."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from polyserve_testkit.servers import free_ports

if TYPE_CHECKING:
    from collections.abc import Iterator

COMMAND = Path(sys.executable).parent / "polyserve"

APP = """\
from polyserve import App, Context

app = App("greeter")


@app.get("/hello/{name}")
def hello(name: str, ctx: Context) -> dict[str, str]:
    ctx.logger.info("said hello", name=name, visits=2)
    ctx.logger.debug("looked up the greeting", language="en")
    return {"hello": name}


@app.get("/fail")
def fail() -> None:
    raise RuntimeError("the greeting store is down")
"""


@contextmanager
def _serve(app_dir: Path, *options: str) -> Iterator[tuple[str, Path]]:
    """Run ``polyserve serve greeter:app``; yield its URL and the file its stderr goes to."""
    assert COMMAND.exists(), f"the polyserve command is not installed at {COMMAND}"
    port = free_ports(1)[0]
    stderr_path = app_dir / "stderr.log"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(COMMAND), "serve", "greeter:app", "--app-dir", str(app_dir),
             "--port", str(port), *options],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/hello/probe", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the local server did not start:\n{stderr_path.read_text()}")
                time.sleep(0.1)
        yield url, stderr_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _json_lines(stderr: Path, invocation_id: str, count: int) -> list[dict[str, Any]]:
    """The JSON lines of one invocation, waiting until ``count`` of them are written."""
    deadline = time.monotonic() + 10
    while True:
        lines = [
            json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")
        ]
        mine = [line for line in lines if line.get("invocation_id") == invocation_id]
        if len(mine) >= count or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "greeter.py").write_text(APP)
    return tmp_path


@pytest.mark.integration
def test_handler_lines_appear_as_json_at_info_by_default(app_dir: Path) -> None:
    with _serve(app_dir) as (url, stderr):
        response = httpx.get(url + "/hello/ada", headers={"x-request-id": "req-ada"}, timeout=5)
        assert response.json() == {"hello": "ada"}
        lines = _json_lines(stderr, "req-ada", 1)
        failed = httpx.get(url + "/fail", headers={"x-request-id": "req-fail"}, timeout=5)
        assert failed.status_code == 500
        assert "store is down" not in failed.text
        errors = _json_lines(stderr, "req-fail", 1)
    assert lines == [
        {
            "level": "INFO",
            "message": "said hello",
            "name": "ada",
            "visits": 2,
            "provider": "local",
            "invocation_id": "req-ada",
            "function_name": "greeter",
            "is_cold_start": False,
        }
    ]
    # The trace of an unhandled error goes to this log, whole, in one line.
    [error] = errors
    assert (error["level"], error["message"], error["error_type"]) == (
        "ERROR",
        "unhandled error",
        "RuntimeError",
    )
    assert "the greeting store is down" in error["traceback"]


@pytest.mark.integration
@pytest.mark.parametrize("reload", [False, True], ids=["plain", "reload"])
def test_log_level_debug_shows_debug_lines(app_dir: Path, reload: bool) -> None:
    options = ["--log-level", "debug", *(["--reload"] if reload else [])]
    with _serve(app_dir, *options) as (url, stderr):
        httpx.get(url + "/hello/bo", headers={"x-request-id": "req-bo"}, timeout=5)
        lines = _json_lines(stderr, "req-bo", 2)
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "said hello"),
        ("DEBUG", "looked up the greeting"),
    ]
    assert lines[1]["language"] == "en"


@pytest.mark.integration
def test_log_level_warning_hides_info_lines(app_dir: Path) -> None:
    with _serve(app_dir, "--log-level", "warning") as (url, stderr):
        httpx.get(url + "/hello/cy", headers={"x-request-id": "req-cy"}, timeout=5)
        httpx.get(url + "/fail", headers={"x-request-id": "req-fail"}, timeout=5)
        # The error line is written after the info line would have been.
        errors = _json_lines(stderr, "req-fail", 1)
        lines = _json_lines(stderr, "req-cy", 0)
    assert [e["message"] for e in errors] == ["unhandled error"]
    assert lines == []
