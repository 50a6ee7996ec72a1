"""``polyserve serve`` sends streamed bodies as they come, over real HTTP.

The app (``streaming_sample/streaming_app.py``) sends its first chunk and then
waits for a second request before it sends the rest: the client must read the
first chunk while the stream is still open, which only a streaming server allows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _serving(lifespan_log: Path) -> Iterator[str]:
    """``polyserve serve`` of the sample app on a free port; stopped with SIGTERM at the end."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyserve._cli", "serve", "streaming_app:app",
         "--app-dir", str(Path(__file__).parent / "streaming_sample"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "POLYSERVE_LIFESPAN_LOG": str(lifespan_log)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/api/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"the local server did not start:\n{out}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()  # SIGTERM: uvicorn shuts down gracefully
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _serving(tmp_path_factory.mktemp("serve") / "lifespan.log") as url:
        yield url


@pytest.mark.parametrize(("path", "name"), [("/api/events", "mounted"), ("/own", "own")])
def test_the_first_chunk_arrives_before_the_stream_ends(
    base_url: str, path: str, name: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        with client.stream("GET", path) as response:
            assert response.status_code == 200
            chunks = response.iter_raw()
            first = next(chunks)
            assert first == b"first\n"
            # The stream is open and waiting: release it from a second request.
            assert client.post(f"/release/{name}").status_code == 204
            assert b"".join(chunks) == b"second\n"
        assert response.headers.get("transfer-encoding") == "chunked"


def test_the_lifespan_starts_with_the_server_and_ends_with_it(tmp_path: Path) -> None:
    log = tmp_path / "lifespan.log"
    with _serving(log) as url:
        assert log.read_text() == "startup\n"  # before any request reached the app
        assert httpx.get(url + "/api/openapi.json").status_code == 200
        assert log.read_text() == "startup\n"
    assert log.read_text() == "startup\nshutdown\n"
