"""Streamed responses: handlers' iterators and mounted apps' chunked bodies."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse as FastApiStreamingResponse

from polyserve import App, Context
from polyserve.events.http import HttpRequest, HttpResponse
from polyserve.streaming import StreamingResponse, is_stream, iterate, iterate_blocking

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


def _ctx() -> Context:
    return Context("test", invocation_id="inv-1")


def _app() -> App:
    app = App("streams")

    @app.get("/sync")
    def sync_chunks() -> Iterator[bytes]:
        yield b"a"
        yield b"b"

    @app.get("/async")
    async def async_chunks() -> AsyncIterator[str]:
        for part in ("x", "y", "z"):
            await asyncio.sleep(0)
            yield part

    @app.get("/events")
    def events() -> HttpResponse:
        return HttpResponse.stream(
            iter(["data: 1\n\n", "data: 2\n\n"]), media_type="text/event-stream"
        )

    @app.get("/broken")
    def broken() -> Iterator[bytes]:
        yield b"part"
        raise RuntimeError("secret detail")

    @app.get("/not-bytes")
    def not_bytes() -> Iterator[object]:
        yield 1

    return app


@pytest.mark.parametrize(
    ("path", "body", "media"),
    [
        ("/sync", b"ab", "application/octet-stream"),
        ("/async", b"xyz", "application/octet-stream"),
        ("/events", b"data: 1\n\ndata: 2\n\n", "text/event-stream"),
    ],
)
def test_a_stream_is_read_whole_where_the_caller_does_not_stream(
    path: str, body: bytes, media: str
) -> None:
    app = _app()
    response = app.handle_http(HttpRequest("GET", path), _ctx())
    assert response.__class__ is HttpResponse
    assert (response.status, response.body, response.media_type) == (200, body, media)
    response = asyncio.run(app.handle_http_async(HttpRequest("GET", path), _ctx()))
    assert response.__class__ is HttpResponse
    assert response.body == body


@pytest.mark.parametrize("path", ["/broken", "/not-bytes"])
def test_a_stream_that_fails_while_read_whole_is_a_500_problem(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = _app().handle_http(HttpRequest("GET", path), _ctx())
    assert response.status == 500
    assert response.media_type == "application/problem+json"
    assert b"secret" not in response.body
    assert any("inv-1" in r.getMessage() for r in caplog.records)


def test_a_stream_that_fails_once_sent_ends_early_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = _app().handle_http(HttpRequest("GET", "/broken"), _ctx(), stream=True)
    assert isinstance(response, StreamingResponse)
    assert list(iterate_blocking(response, _ctx())) == [b"part"]
    assert any("the response stream failed" in r.getMessage() for r in caplog.records)


def test_asked_for_a_stream_the_app_returns_one_and_middleware_keep_it() -> None:
    app = _app()

    @app.middleware
    def tag(call: Any, request: HttpRequest, ctx: Context) -> HttpResponse:
        response: HttpResponse = call(request)
        return response.with_header("x-tag", "1")

    response = app.handle_http(HttpRequest("GET", "/sync"), _ctx(), stream=True)
    assert isinstance(response, StreamingResponse)
    assert response.headers["x-tag"] == "1"
    assert list(iterate_blocking(response, _ctx())) == [b"a", b"b"]

    async def read() -> list[bytes]:
        response = await app.handle_http_async(HttpRequest("GET", "/async"), _ctx(), stream=True)
        assert isinstance(response, StreamingResponse)
        return [chunk async for chunk in iterate(response, _ctx())]

    assert asyncio.run(read()) == [b"x", b"y", b"z"]


def test_a_head_request_drops_the_stream() -> None:
    response = _app().handle_http(HttpRequest("HEAD", "/sync"), _ctx(), stream=True)
    assert response.__class__ is HttpResponse
    assert response.body == b""


def test_what_counts_as_a_stream() -> None:
    async def agen() -> AsyncIterator[bytes]:
        yield b""

    assert is_stream(iter([b"a"]))
    assert is_stream(agen())
    for body in (b"a", "a", [b"a"], {"a": 1}, None, bytearray(b"a")):
        assert not is_stream(body)


def _fastapi(release: threading.Event) -> FastAPI:
    api = FastAPI()

    @api.get("/stream")
    async def stream() -> FastApiStreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first"
            # The reader must get "first" before this generator may go on.
            await asyncio.to_thread(release.wait, 5)
            yield b"second" if release.is_set() else b"timed out"

        return FastApiStreamingResponse(body(), media_type="text/event-stream")

    @api.get("/stream-fails")
    async def stream_fails() -> FastApiStreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"one"
            raise RuntimeError("secret detail")

        return FastApiStreamingResponse(body())

    return api


def test_a_mounted_apps_stream_reaches_the_reader_chunk_by_chunk() -> None:
    release = threading.Event()
    app = App("mounted")
    app.mount("/", _fastapi(release))
    response = app.handle_http(HttpRequest("GET", "/stream"), _ctx(), stream=True)
    assert isinstance(response, StreamingResponse)
    assert response.headers["content-type"].startswith("text/event-stream")
    reader = iterate_blocking(response, _ctx())
    assert next(reader) == b"first"
    assert not release.is_set()  # the app is still waiting: nothing was buffered
    release.set()
    assert list(reader) == [b"second"]
    app.close()


def test_a_mounted_apps_stream_is_read_whole_where_the_platform_buffers() -> None:
    release = threading.Event()
    release.set()
    app = App("mounted")
    app.mount("/", _fastapi(release))
    response = app.handle_http(HttpRequest("GET", "/stream"), _ctx())
    assert response.__class__ is HttpResponse
    assert response.body == b"firstsecond"
    failed = app.handle_http(HttpRequest("GET", "/stream-fails"), _ctx())
    assert failed.status == 500
    assert b"secret" not in failed.body
    app.close()


def test_a_mounted_stream_the_reader_abandons_disconnects_the_app() -> None:
    release = threading.Event()
    app = App("mounted")
    app.mount("/", _fastapi(release))
    response = app.handle_http(HttpRequest("GET", "/stream"), _ctx(), stream=True)
    assert isinstance(response, StreamingResponse)
    reader = iterate_blocking(response, _ctx())
    assert next(reader) == b"first"
    reader.close()  # the client went away
    release.set()
    # The app was cancelled: the next request is answered as usual.
    assert app.handle_http(HttpRequest("GET", "/stream"), _ctx()).body == b"firstsecond"
    app.close()
