"""A FastAPI app mounted on a polyserve app, answered through the Lambda handler."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse

import polyserve_aws
from polyserve import App

from .support import FakeLambdaContext, load

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _handler() -> Any:
    api = FastAPI()

    @api.post("/pets/{name}")
    async def create(
        name: str, request: Request, tag: Annotated[list[str], Query()]
    ) -> dict[str, Any]:
        return {
            "name": name,
            "tags": tag,
            "body": await request.json(),
            "cookies": dict(request.cookies),
        }

    app = App("pets")
    app.mount("/", api)
    return polyserve_aws.handler(app)


def test_http_api_requests_reach_the_mounted_app() -> None:
    handler = _handler()
    result = handler(load("apigw-http-post.json"), FakeLambdaContext())
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {
        "name": "new arrivals",
        "tags": ["a", "b&c"],
        "body": {"name": "Tom", "species": "cat"},
        "cookies": {"session": "abc", "theme": "dark"},
    }


def test_a_path_the_mounted_app_lacks_is_its_own_404() -> None:
    event = load("apigw-http-post.json")
    event["rawPath"] = "/nothing"
    event["requestContext"]["http"]["path"] = "/nothing"
    result = _handler()(event, FakeLambdaContext())
    assert result["statusCode"] == 404
    assert json.loads(result["body"]) == {"detail": "Not Found"}


def test_a_streamed_body_comes_whole_and_a_broken_app_is_a_500_problem() -> None:
    api = FastAPI()

    @api.post("/pets/{name}")
    async def stream(name: str) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"
            if name == "broken":
                raise RuntimeError("secret detail")

        return StreamingResponse(chunks(), media_type="text/plain")

    app = App("pets")
    app.mount("/", api)
    handler = polyserve_aws.handler(app)
    result = handler(load("apigw-http-post.json"), FakeLambdaContext())
    assert (result["statusCode"], result["body"]) == (200, "ab")  # Lambda buffers the stream
    event = load("apigw-http-post.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/pets/broken"
    failed = handler(event, FakeLambdaContext())
    assert failed["statusCode"] == 500
    assert failed["headers"]["content-type"] == "application/problem+json"
    assert "secret" not in failed["body"]
    app.close()


def test_an_oversize_body_is_refused_before_the_mounted_app() -> None:
    seen: list[object] = []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    app = App("small", max_body_size=8)
    app.mount("/", asgi)
    result = polyserve_aws.handler(app)(load("apigw-http-post.json"), FakeLambdaContext())
    assert result["statusCode"] == 413
    assert seen == []


_SIGTERM_APP = """
import json, sys, time
from pathlib import Path

import polyserve_aws
from polyserve import App

sample, log = Path(sys.argv[1]), open(sys.argv[2], "a", buffering=1)


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                log.write("startup\\n")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                log.write("shutdown\\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class Context:
    aws_request_id = "req-1"
    function_name = "fn"
    invoked_function_arn = "arn:aws:lambda:us-east-1:1:function:fn"

    def get_remaining_time_in_millis(self):
        return 30_000


app = App("sigterm")
app.mount("/", asgi)
handler = polyserve_aws.handler(app)
event = json.loads(sample.read_text())
for _ in range(5):  # warm invocations, on the main thread as the runtime makes them
    assert handler(event, Context())["statusCode"] == 200
print("ready", flush=True)
time.sleep(60)  # frozen between invocations, until Lambda sends SIGTERM
"""


def test_sigterm_runs_the_lifespan_shutdown_once_and_exits(tmp_path: Path) -> None:
    # Lambda sends SIGTERM before it stops a process that has an extension registered.
    log = tmp_path / "lifespan.log"
    sample = Path(__file__).parent / "events" / "apigw-http-post.json"
    with subprocess.Popen(
        [sys.executable, "-c", _SIGTERM_APP, str(sample), str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", proc.stderr.read() if proc.stderr else ""
            assert log.read_text() == "startup\n"  # once, for five invocations
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert log.read_text() == "startup\nshutdown\n"
