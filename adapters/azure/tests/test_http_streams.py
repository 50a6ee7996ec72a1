"""HTTP streams: the HTTP function in the worker's FastAPI mode sends a body as it comes.

The Functions host is not available here. What the worker does in this mode is
played by a few lines: the extension's own ``WebApp`` (FastAPI with its catch-all
route) served by uvicorn on a loopback port, whose route calls the generated
function with the request, as the worker's coordinator hands it over, and returns
what the function returns. A real HTTP client reads the response from the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import sys
import typing
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from adapters.azure.tests.support import InvocationContext, functions
from azurefunctions.extensions.base import RequestTrackerMeta, ResponseTrackerMeta
from azurefunctions.extensions.http.fastapi import WebApp
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.requests import Request  # noqa: TC002 (FastAPI reads the annotation at run time)

import polyserve_azure
from polyserve import App, HttpRequest, HttpResponse
from polyserve.errors import MissingDependencyError
from polyserve_testkit.servers import free_ports

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from azure.functions.decorators.function_app import Function


def _app(release: asyncio.Event, started: list[int] | None = None) -> App:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await release.wait()
        yield b"second"

    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[dict[str, str]]:
        if started is not None:
            started.append(1)
        yield {"greeting": "hello"}

    api = FastAPI(lifespan=lifespan)

    @api.get("/greeting")
    async def greeting(request: Request) -> str:
        return str(request.state.greeting)

    @api.get("/events")
    async def events() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/event-stream")

    app = App("streams", max_body_size=16)
    app.mount("/fast", api)

    @app.get("/own")
    def own() -> HttpResponse:
        return HttpResponse.stream(chunks(), media_type="text/event-stream")

    @app.post("/echo/{name}")
    def echo(request: HttpRequest, name: str) -> HttpResponse:
        seen = {
            "path": request.path,
            "name": name,
            "query": request.query.get_all("tag"),
            "body": request.body.decode(),
            "client": request.client,
            "request_id": request.request_id,
            "accept": request.headers.get_all("accept"),
        }
        response = HttpResponse.json(seen, status=201).set_cookie("a", "1")
        return response.set_cookie("b", "2")

    return app


def _function(app: App) -> Function:
    return functions(polyserve_azure.function_app(app, http_streams=True))["http"]


def test_the_function_has_the_types_the_worker_accepts_in_this_mode() -> None:
    user = _function(_app(asyncio.Event())).get_user_function()
    hints = typing.get_type_hints(user)
    # The checks the worker makes of an HTTP function once the extension is imported.
    assert RequestTrackerMeta.check_type(hints["req"])
    assert ResponseTrackerMeta.check_type(hints["return"])
    assert inspect.iscoroutinefunction(user)


async def _serving(function: Function, scenario: Callable[[httpx.AsyncClient], Any]) -> Any:
    """Run ``scenario`` against a worker-like server that calls ``function``."""
    user = function.get_user_function()
    web = WebApp()

    async def catch_all(request: Request) -> Any:
        # The worker passes the request it took from its server, and a context.
        return await user(request, InvocationContext("inv-9"))

    web.route(catch_all)  # the extension's catch-all route, as the worker registers its own

    [port] = free_ports(1)
    server = uvicorn.Server(
        uvicorn.Config(
            web.get_app(), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            return await asyncio.wait_for(scenario(client), 20)
    finally:
        server.should_exit = True
        await serving


@pytest.mark.parametrize("path", ["/api/own", "/api/fast/events"])
def test_each_chunk_reaches_the_client_while_the_producer_is_still_running(path: str) -> None:
    async def main() -> tuple[int, str, list[bytes]]:
        release = asyncio.Event()

        async def scenario(client: httpx.AsyncClient) -> tuple[int, str, list[bytes]]:
            async with client.stream("GET", path) as response:
                chunks = response.aiter_raw()
                seen = [await chunks.__anext__()]
                assert not release.is_set()
                release.set()  # only now may the producer send its second chunk
                seen += [chunk async for chunk in chunks]
                return response.status_code, response.headers["content-type"], seen

        return typing.cast(
            "tuple[int, str, list[bytes]]", await _serving(_function(_app(release)), scenario)
        )

    status, content_type, seen = asyncio.run(main())
    assert status == 200
    assert content_type.startswith("text/event-stream")
    assert seen == [b"first", b"second"]


def test_the_mounted_app_starts_once_and_its_state_reaches_every_request() -> None:
    started: list[int] = []

    async def scenario(client: httpx.AsyncClient) -> list[str]:
        return [(await client.get("/api/fast/greeting")).json() for _ in range(3)]

    answers = asyncio.run(_serving(_function(_app(asyncio.Event(), started)), scenario))
    assert answers == ["hello"] * 3
    assert started == [1]


def test_a_whole_response_keeps_its_status_headers_and_body() -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            "/api/echo/rex?tag=a&tag=b",
            content=b"hello",
            headers=[("accept", "text/plain"), ("accept", "application/json"),
                     ("x-forwarded-for", "198.51.100.1, 203.0.113.7")],
        )  # fmt: skip

    response = asyncio.run(_serving(_function(_app(asyncio.Event())), scenario))
    assert response.status_code == 201
    assert json.loads(response.content) == {
        "path": "/echo/rex",
        "name": "rex",
        "query": ["a", "b"],
        "body": "hello",
        "client": "203.0.113.7",
        "request_id": "inv-9",
        "accept": ["text/plain", "application/json"],
    }
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    # Each cookie keeps its own header line.
    cookies = response.headers.get_list("set-cookie")
    assert [cookie.split(";")[0] for cookie in cookies] == ["a=1", "b=2"]


def test_a_body_over_the_limit_is_refused_before_the_handler_runs() -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/api/echo/rex", content=b"x" * 17)

    response = asyncio.run(_serving(_function(_app(asyncio.Event())), scenario))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.content)["code"] == "payload_too_large"


def test_without_the_extension_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azurefunctions.extensions.http.fastapi", None)
    with pytest.raises(MissingDependencyError, match=r"polyserve-azure\[http-streams\]"):
        polyserve_azure.function_app(_app(asyncio.Event()), http_streams=True)
