"""The invocation pipeline: middleware, exception handlers and the sync/async bridge."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import (
    App,
    ConfigurationError,
    Context,
    HttpError,
    HttpRequest,
    HttpResponse,
    Message,
    Router,
    SetAside,
    Trigger,
)
from polyserve.retry import Retry

if TYPE_CHECKING:
    from polyserve.batch import BatchResult


def _ctx() -> Context:
    return Context("test", invocation_id="inv-1", function_name="fn")


def _get(app: App, path: str) -> HttpResponse:
    return app.handle_http(HttpRequest("GET", path), _ctx())


async def _get_async(app: App, path: str, *, offload: bool = True) -> HttpResponse:
    return await app.handle_http_async(HttpRequest("GET", path), _ctx(), offload=offload)


def _body(response: HttpResponse) -> Any:
    return json.loads(response.body)


def _queue(app: App, *bodies: bytes, attempt: int = 1) -> BatchResult:
    records = [Message(id=str(i), body=body, attempt=attempt) for i, body in enumerate(bodies)]
    return app.handle_batch(
        Trigger.QUEUE, records, _ctx(), decode=lambda m: ("orders", m), item_id=lambda m: m.id
    )


class Trace:
    """Middleware that record the order they run in."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def sync(self, name: str) -> Any:
        def middleware(call: Any, event: Any, ctx: Context) -> Any:
            self.calls.append(f"{name}>")
            result = call(event)
            self.calls.append(f"<{name}")
            return result

        return middleware

    def async_(self, name: str) -> Any:
        async def middleware(call: Any, event: Any, ctx: Context) -> Any:
            self.calls.append(f"{name}>")
            result = await call(event)
            self.calls.append(f"<{name}")
            return result

        return middleware


# -- middleware ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_middleware_run_in_order_around_http_and_events(kind: str) -> None:
    trace = Trace()
    make = trace.sync if kind == "sync" else trace.async_
    app = App("t", middleware=[make("a")])
    app.middleware(make("b"))
    router = Router(middleware=[make("router")])

    @router.get("/x", middleware=[make("route")])
    def x() -> dict[str, int]:
        trace.calls.append("handler")
        return {"ok": 1}

    app.include_router(router)

    @app.queue("orders", middleware=[make("reg")])
    def on_order(msg: Message) -> None:
        trace.calls.append("event")

    assert _get(app, "/x").status == 200
    assert trace.calls == [
        "a>",
        "b>",
        "router>",
        "route>",
        "handler",
        "<route",
        "<router",
        "<b",
        "<a",
    ]
    trace.calls.clear()
    assert _queue(app, b"{}").succeeded == ("0",)
    assert trace.calls == ["a>", "b>", "reg>", "event", "<reg", "<b", "<a"]


def test_app_middleware_see_every_request_even_404s() -> None:
    seen: list[tuple[str, int]] = []
    app = App("t")

    @app.middleware
    def record(call: Any, request: HttpRequest, ctx: Context) -> HttpResponse:
        response: HttpResponse = call(request)
        seen.append((request.path, response.status))
        return response

    assert _get(app, "/missing").status == 404
    assert seen == [("/missing", 404)]


def test_middleware_may_short_circuit_replace_the_request_and_the_response() -> None:
    app = App("t")

    @app.middleware
    def gate(call: Any, request: HttpRequest, ctx: Context) -> Any:
        if request.path == "/blocked":
            return {"blocked": True}  # rendered like a handler's result
        if request.path == "/old":
            request = HttpRequest("GET", "/new")
        response: HttpResponse = call(request)
        return response.with_header("x-seen", "yes")

    @app.get("/new")
    def new() -> str:
        return "new"

    blocked = _get(app, "/blocked")
    assert (blocked.status, _body(blocked)) == (200, {"blocked": True})
    moved = _get(app, "/old")
    assert (moved.body, moved.headers["x-seen"]) == (b"new", "yes")


def test_middleware_may_replace_an_event_and_its_result() -> None:
    app = App("t")
    handled: list[bytes] = []

    @app.middleware(http=False)
    async def upper(call: Any, event: Any, ctx: Context) -> Any:
        if isinstance(event, Message):
            event = Message(id=event.id, body=event.body.upper())
        result = await call(event)
        return f"wrapped {result}"

    @app.queue("orders")
    def on_order(msg: Message) -> str:
        handled.append(msg.body)
        return "done"

    assert app.handle_event(Trigger.QUEUE, "orders", Message(id="1", body=b"abc"), _ctx()) == (
        "wrapped done"
    )
    assert handled == [b"ABC"]


def test_middleware_can_be_limited_to_http_or_to_events() -> None:
    trace = Trace()
    app = App("t")
    app.middleware(trace.sync("http"), events=False)
    app.middleware(trace.sync("events"), http=False)

    @app.get("/x")
    def x() -> str:
        return "x"

    @app.queue("orders")
    def on_order(msg: Message) -> None: ...

    _get(app, "/x")
    _queue(app, b"{}")
    assert trace.calls == ["http>", "<http", "events>", "<events"]


def test_middleware_added_after_the_first_request_applies_from_then_on() -> None:
    trace = Trace()
    app = App("t")

    @app.get("/x")
    def x() -> str:
        return "x"

    _get(app, "/x")
    app.middleware(trace.sync("late"))
    _get(app, "/x")
    assert trace.calls == ["late>", "<late"]


@pytest.mark.parametrize("offload", [True, False])
def test_async_entry_points_run_sync_and_async_middleware_and_handlers(offload: bool) -> None:
    trace = Trace()
    app = App("t", middleware=[trace.sync("sync"), trace.async_("async")])

    @app.get("/a")
    async def a() -> str:
        await asyncio.sleep(0)
        return "a"

    @app.get("/s")
    def s() -> str:
        return "s"

    async def both() -> list[bytes]:
        if not offload:
            # Without threads, a sync middleware cannot wait for a handler that suspends.
            return [(await _get_async(app, "/s", offload=offload)).body]
        return [(await _get_async(app, path, offload=offload)).body for path in ("/a", "/s")]

    bodies = asyncio.run(both())
    assert bodies == ([b"a", b"s"] if offload else [b"s"])


def test_a_sync_middleware_around_a_suspending_handler_without_threads_is_a_clear_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App("t")

    @app.middleware
    def sync(call: Any, event: Any, ctx: Context) -> Any:
        return call(event)

    @app.get("/a")
    async def a() -> str:
        await asyncio.sleep(0)
        return "a"

    response = asyncio.run(_get_async(app, "/a", offload=False))
    assert response.status == 500
    assert "make the middleware an async function" in caplog.text


def test_sync_entry_points_run_async_middleware_and_handlers_on_a_loop() -> None:
    app = App("t")

    @app.middleware
    async def wrap(call: Any, event: Any, ctx: Context) -> Any:
        await asyncio.sleep(0)
        return await call(event)

    @app.get("/a")
    async def a() -> str:
        await asyncio.sleep(0)
        return "a"

    assert _get(app, "/a").body == b"a"


# -- exception handlers ----------------------------------------------------------


class OutOfStockError(Exception):
    pass


class LastItemGoneError(OutOfStockError):
    pass


def test_the_most_specific_exception_handler_wins_whatever_the_order() -> None:
    app = App("t")

    @app.exception_handler(Exception)
    def anything(exc: Exception, request: HttpRequest, ctx: Context) -> HttpResponse:
        return HttpResponse.problem(500, "anything", str(exc))

    @app.exception_handler(OutOfStockError)
    def out_of_stock(exc: Exception, request: HttpRequest, ctx: Context) -> HttpResponse:
        return HttpResponse.problem(409, "out_of_stock", str(exc))

    @app.get("/buy/{n:int}")
    def buy(n: int) -> None:
        raise LastItemGoneError(f"item {n}") if n else ValueError("zero")

    assert _body(_get(app, "/buy/3"))["code"] == "out_of_stock"
    assert _body(_get(app, "/buy/0"))["code"] == "anything"


def test_exception_handlers_see_routing_and_validation_errors_too() -> None:
    app = App("t")

    @app.exception_handler(HttpError)
    async def custom(exc: HttpError, request: HttpRequest, ctx: Context) -> HttpResponse:
        return HttpResponse.json({"oops": exc.code}, exc.status)

    assert _body(_get(app, "/nowhere")) == {"oops": "not_found"}


def test_a_router_exception_handler_applies_to_its_routes_only() -> None:
    app = App("t")
    router = Router()

    @router.exception_handler(OutOfStockError)
    def local(exc: Exception, request: HttpRequest, ctx: Context) -> HttpResponse:
        return HttpResponse.text("router", 409)

    @router.get("/inside")
    def inside() -> None:
        raise OutOfStockError

    @app.get("/outside")
    def outside() -> None:
        raise OutOfStockError

    app.include_router(router)
    assert _get(app, "/inside").body == b"router"
    assert _get(app, "/outside").status == 500


def test_a_middleware_that_raises_goes_through_the_exception_handlers() -> None:
    app = App("t")

    @app.middleware
    def broken(call: Any, event: Any, ctx: Context) -> Any:
        raise OutOfStockError("from middleware")

    @app.exception_handler(OutOfStockError)
    def handled(exc: Exception, request: HttpRequest, ctx: Context) -> HttpResponse:
        return HttpResponse.text(str(exc), 409)

    response = _get(app, "/anything")
    assert (response.status, response.body) == (409, b"from middleware")


def test_an_exception_handler_that_raises_falls_back_to_the_default_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App("t")

    @app.exception_handler(OutOfStockError)
    def broken(exc: Exception, request: HttpRequest, ctx: Context) -> HttpResponse:
        raise RuntimeError("handler bug")

    @app.get("/x")
    def x() -> None:
        raise OutOfStockError

    response = _get(app, "/x")
    assert response.status == 500
    assert _body(response)["code"] == "internal_error"
    assert "handler bug" in caplog.text
    assert "handler bug" not in response.body.decode()


def test_an_event_exception_handler_turns_failures_into_success_retry_or_set_aside() -> None:
    app = App("t")

    @app.exception_handler(OutOfStockError)
    def out_of_stock(exc: Exception, event: Message, ctx: Context) -> Any:
        if event.body == b"gone":
            return SetAside("no such product")
        if event.body == b"later":
            raise Retry("restocking", delay=60)
        return "substituted"

    @app.queue("orders")
    def on_order(msg: Message) -> str:
        if msg.body == b"fine":
            return "ok"
        if msg.body == b"bug":
            raise ValueError("a bug")
        raise OutOfStockError

    result = _queue(app, b"fine", b"gone", b"later", b"other", b"bug")
    assert result.succeeded == ("0", "3")
    assert result.set_aside == ("1",)
    assert [(f.item_id, f.retry_delay) for f in result.failed] == [("2", 60), ("4", None)]


def test_a_single_event_set_aside_returns_none_and_a_failure_raises() -> None:
    app = App("t")

    @app.queue("orders")
    def on_order(msg: Message) -> Any:
        if msg.body == b"skip":
            return SetAside("not for us")
        raise OutOfStockError

    assert app.handle_event(Trigger.QUEUE, "orders", Message(id="1", body=b"skip"), _ctx()) is None
    with pytest.raises(OutOfStockError):
        app.handle_event(Trigger.QUEUE, "orders", Message(id="2", body=b"x"), _ctx())


def test_exception_handlers_take_exception_classes_only() -> None:
    with pytest.raises(ConfigurationError):
        App("t").exception_handler("KeyError")  # type: ignore[arg-type]  # the point of the test


@pytest.mark.parametrize("offload", [False, True])
def test_a_batch_handler_of_the_event_alone_runs_where_the_invocation_says(offload: bool) -> None:
    # Called without the pipeline around it, a sync handler still goes to a worker
    # thread when an async entry point offloads, and runs inline otherwise.
    import threading

    app = App("t")
    threads: list[threading.Thread] = []

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        threads.append(threading.current_thread())
        if msg.body == b"bad":
            raise ValueError("bad")

    async def run() -> BatchResult:
        return await app.handle_batch_async(
            Trigger.QUEUE, [Message(id="1"), Message(id="2", body=b"bad")], _ctx(),
            decode=lambda m: ("orders", m), item_id=lambda m: m.id, offload=offload,
        )  # fmt: skip

    result = asyncio.run(run())
    assert (result.succeeded, result.failed_ids) == (("1",), ["2"])
    main = threading.main_thread()
    assert len(threads) == 2
    assert all((t is not main) is offload for t in threads)


def test_an_exception_handler_that_raises_another_error_is_handled_again_for_events() -> None:
    # The same rule with and without middleware: what an exception handler raises
    # goes to the exception handlers once more, from the outside.
    for around in (False, True):
        app = App("t")
        if around:
            app.middleware(lambda call, event, ctx: call(event))

        @app.exception_handler(KeyError)
        def missing(exc: Exception, event: Message, ctx: Context) -> Any:
            raise OutOfStockError

        @app.exception_handler(OutOfStockError)
        def out_of_stock(exc: Exception, event: Message, ctx: Context) -> Any:
            return SetAside("out of stock")

        @app.queue("orders")
        def on_order(msg: Message) -> None:
            raise KeyError("sku")

        assert _queue(app, b"x").set_aside == ("0",), around
