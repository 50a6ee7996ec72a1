"""Mounted ASGI apps: routing precedence, the scope, lifespan once per process, bad apps."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI, Request

from polyserve import App, Context
from polyserve.events.headers import Headers, QueryParams
from polyserve.events.http import HttpRequest, HttpResponse
from polyserve.mount import context_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _ctx(n: int = 0) -> Context:
    return Context("test", invocation_id=f"inv-{n}")


def _shop() -> tuple[App, list[str]]:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"db": "pool"}
        events.append("shutdown")

    api = FastAPI(lifespan=lifespan)

    @api.get("/items/{item_id}")
    async def item(item_id: int, request: Request, q: str = "") -> dict[str, Any]:
        return {
            "id": item_id,
            "q": q,
            "db": request.state.db,
            "invocation": context_of(request).invocation_id,
            "root_path": request.scope["root_path"],
            "cookies": dict(request.cookies),
        }

    @api.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {"size": len(await request.body())}

    app = App("shop")
    app.mount("/api", api)

    @app.get("/api/items/0")
    def own() -> dict[str, bool]:
        return {"polyserve": True}

    return app, events


def test_requests_under_the_prefix_reach_the_asgi_app_with_state_and_context() -> None:
    app, _ = _shop()
    request = HttpRequest(
        "GET", "/api/items/7", QueryParams.from_string("q=a%20b"),
        Headers([("cookie", "a=1; b=2")]),
    )  # fmt: skip
    response = app.handle_http(request, _ctx(7))
    assert response.status == 200
    assert json.loads(response.body) == {
        "id": 7, "q": "a b", "db": "pool", "invocation": "inv-7", "root_path": "/api",
        "cookies": {"a": "1", "b": "2"},
    }  # fmt: skip
    app.close()


def test_polyserve_routes_take_precedence_and_paths_outside_the_prefix_are_404() -> None:
    app, _ = _shop()
    assert json.loads(app.handle_http(HttpRequest("GET", "/api/items/0"), _ctx()).body) == {
        "polyserve": True
    }
    assert app.handle_http(HttpRequest("GET", "/elsewhere"), _ctx()).status == 404
    app.close()


def test_lifespan_starts_once_across_many_and_concurrent_invocations_and_shuts_down() -> None:
    app, events = _shop()
    for n in range(50):
        assert app.handle_http(HttpRequest("GET", f"/api/items/{n + 1}"), _ctx(n)).status == 200

    async def many() -> list[HttpResponse]:
        return await asyncio.gather(
            *[app.handle_http_async(HttpRequest("GET", "/api/items/3"), _ctx(n)) for n in range(50)]
        )

    assert {r.status for r in asyncio.run(many())} == {200}
    assert events == ["startup"]
    app.close()
    assert events == ["startup", "shutdown"]


def test_concurrent_first_requests_on_an_async_server_share_one_startup() -> None:
    app, events = _shop()

    async def many() -> list[HttpResponse]:
        responses = await asyncio.gather(
            *[app.handle_http_async(HttpRequest("GET", "/api/items/3"), _ctx(n)) for n in range(20)]
        )
        await app.aclose()
        return responses

    assert {r.status for r in asyncio.run(many())} == {200}
    assert events == ["startup", "shutdown"]


def test_a_failed_startup_fails_the_request_and_is_retried_on_the_next() -> None:
    attempts: list[int] = []

    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database down")
        yield

    api = FastAPI(lifespan=lifespan)
    api.get("/")(lambda: {"ok": True})
    app = App("retry")
    app.mount("/", api)
    first = app.handle_http(HttpRequest("GET", "/"), _ctx(1))
    assert first.status == 500
    assert b"database down" not in first.body
    assert app.handle_http(HttpRequest("GET", "/"), _ctx(2)).status == 200
    assert len(attempts) == 2
    app.close()


def test_middleware_runs_around_mounted_apps() -> None:
    app, _ = _shop()

    @app.middleware
    def tag(call: Any, request: HttpRequest, ctx: Context) -> HttpResponse:
        response: HttpResponse = call(request)
        return response.with_header("x-seen", ctx.route or "")

    response = app.handle_http(HttpRequest("GET", "/api/items/5"), _ctx())
    assert response.status == 200
    assert response.headers["x-seen"] == "/api/{path:path}"
    app.close()


def test_an_oversize_body_is_refused_before_the_app() -> None:
    seen: list[object] = []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    app = App("small", max_body_size=10)
    app.mount("/", asgi)
    assert app.handle_http(HttpRequest("POST", "/", body=b"x" * 11), _ctx()).status == 413
    assert seen == []


async def _raises(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        raise RuntimeError("secret detail")


async def _silent(scope: Any, receive: Any, send: Any) -> None:
    return None


async def _twice(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})


async def _body_first(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.body", "body": b"x"})


async def _bad_status(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 99, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _bad_header(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\nb")]})
        await send({"type": "http.response.body", "body": b""})


async def _hangs(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()
        await receive()  # waits for a disconnect that comes only after a response


async def _streams_then_raises(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("secret detail")


async def _streams_then_hangs(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await receive()
        await receive()  # the client stays until the body is complete: past the deadline


@pytest.mark.parametrize(
    "asgi",
    [
        _raises, _silent, _twice, _body_first, _bad_status, _bad_header, _hangs,
        _streams_then_raises, _streams_then_hangs,
    ],
)  # fmt: skip
def test_a_misbehaving_asgi_app_gets_a_500_problem_and_a_log_line(
    asgi: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = App("bad")
    app.mount("/", asgi)
    ctx = Context("test", invocation_id="bad-1", deadline=__import__("time").time() + 0.2)
    response = app.handle_http(HttpRequest("GET", "/"), ctx)
    assert response.status == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert b"secret" not in response.body
    assert any("bad-1" in r.getMessage() for r in caplog.records)
    app.close()
