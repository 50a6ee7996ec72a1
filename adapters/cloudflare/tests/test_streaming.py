"""Streamed bodies become a ``Response`` over a stream that pulls each chunk as it comes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from polyserve import App, HttpResponse
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.testing import FakeExecutionContext, FakeRequest, FakeRuntime

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _app(release: asyncio.Event) -> App:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await release.wait()
        yield b"second"

    api = FastAPI()

    @api.get("/events")
    async def events() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/event-stream")

    app = App("worker")
    app.mount("/api", api)

    @app.get("/own")
    def own() -> HttpResponse:
        return HttpResponse.stream(chunks(), media_type="text/event-stream")

    @app.get("/empty")
    def empty() -> HttpResponse:
        return HttpResponse.stream(iter([b""]), 204)

    return app


def test_each_chunk_is_pulled_while_the_producer_is_still_running() -> None:
    async def scenario(path: str) -> list[bytes]:
        release = asyncio.Event()
        worker = entrypoint(_app(release), runtime=FakeRuntime())(FakeExecutionContext(), {})
        response = await worker.fetch(FakeRequest("GET", "https://w.example" + path))
        assert response.status == 200
        assert response.headers.get("content-type").startswith("text/event-stream")
        assert response.body is None
        assert response.stream is not None
        seen = [await response.stream.__anext__()]
        release.set()  # only now may the producer send its second chunk
        seen += [chunk async for chunk in response.stream]
        return seen

    for path in ("/own", "/api/events"):
        assert asyncio.run(scenario(path)) == [b"first", b"second"]


def test_a_status_without_a_body_drops_the_stream() -> None:
    async def scenario() -> tuple[int, bytes | None, object]:
        worker = entrypoint(_app(asyncio.Event()), runtime=FakeRuntime())(
            FakeExecutionContext(), {}
        )
        response = await worker.fetch(FakeRequest("GET", "https://w.example/empty"))
        return response.status, response.body, response.stream

    assert asyncio.run(scenario()) == (204, None, None)
