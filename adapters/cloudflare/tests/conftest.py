"""Fixtures for the Cloudflare adapter's tests: an app and its entry point on fakes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import App, Context, HttpRequest, HttpResponse, Message, ScheduleEvent
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.testing import FakeExecutionContext, FakeRuntime

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from polyserve_cloudflare import Entrypoint


class Seen:
    """What the test app's handlers received, for the assertions."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.contexts: list[Context] = []
        self.messages: list[Message] = []
        self.schedules: list[ScheduleEvent] = []


SDK_DIR = Path(__file__).parents[3] / ".cache" / "workers-runtime-sdk"


@pytest.fixture(scope="session")
def sdk_dir() -> Path:
    """The folder holding the ``workers-runtime-sdk`` wheel (skips, or fails under CI, without)."""
    if not any(SDK_DIR.glob("workers_runtime_sdk-*.whl")):
        message = f"no workers-runtime-sdk wheel in {SDK_DIR}; run .ci/install-servers"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SDK_DIR


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def app(seen: Seen) -> App:
    app = App("shop")

    @app.route("/echo/{rest:path}", ["GET", "POST", "PUT", "PATCH", "DELETE"])
    def echo(request: HttpRequest, ctx: Context) -> HttpResponse:
        seen.requests.append(request)
        seen.contexts.append(ctx)
        return HttpResponse.binary(request.body, headers={"x-method": request.method})

    @app.get("/items/{item_id:int}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/json")
    def parse(request: HttpRequest) -> dict[str, Any]:
        return {"got": request.json()}

    @app.get("/cookies")
    def cookies() -> HttpResponse:
        response = HttpResponse.text("hi", headers={"x-a": "1"}).with_header("x-a", "2")
        return response.set_cookie("a", "1").set_cookie("b", "2")

    @app.get("/bad-header")
    def bad_header() -> HttpResponse:
        return HttpResponse.text("x", headers={"x-bad": "a\nb"})

    @app.get("/no-content")
    def no_content() -> HttpResponse:
        return HttpResponse(204, body=b"ignored")

    @app.queue("orders")
    def on_order(message: Message, ctx: Context) -> None:
        seen.messages.append(message)
        seen.contexts.append(ctx)
        if message.body == b"fail":
            raise RuntimeError("handler failed")

    @app.schedule("nightly", cron="0 3 * * *")
    def nightly(event: ScheduleEvent, ctx: Context) -> None:
        seen.schedules.append(event)
        seen.contexts.append(ctx)

    @app.schedule("broken", cron="*/5 * * * *")
    def broken(event: ScheduleEvent) -> None:
        raise ValueError("schedule failed")

    return app


@pytest.fixture
def worker(app: App) -> Entrypoint:
    """An instance of the app's ``Default`` class, as the runtime would create it."""
    return entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {"KV": "kv"})
