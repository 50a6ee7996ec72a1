"""Dependencies: Depends, scopes, caching, teardown and overrides."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import TYPE_CHECKING, Annotated, Any

import pytest

from polyserve import (
    App,
    ConfigurationError,
    Context,
    Depends,
    Header,
    Headers,
    HttpRequest,
    HttpResponse,
    Message,
    Router,
    SetAside,
    Trigger,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


def _ctx(invocation_id: str = "inv-1") -> Context:
    return Context("test", invocation_id=invocation_id, function_name="fn")


def _get(app: App, path: str, **headers: str) -> HttpResponse:
    return app.handle_http(HttpRequest("GET", path, headers=Headers(headers)), _ctx())


def _body(response: HttpResponse) -> Any:
    return json.loads(response.body)


class Tenant:
    def __init__(self, name: str) -> None:
        self.name = name


def current_tenant(x_tenant: Annotated[str, Header()]) -> Tenant:
    return Tenant(x_tenant)


def test_providers_take_request_values_context_and_other_dependencies() -> None:
    app = App("t")

    def prefix(ctx: Context, tenant: Tenant = Depends(current_tenant)) -> str:
        return f"{tenant.name}:{ctx.invocation_id}"

    @app.get("/orders/{order_id:int}")
    def order(
        order_id: int,
        tenant: Annotated[Tenant, Depends(current_tenant)],
        key: str = Depends(prefix),
    ) -> dict[str, Any]:
        return {"id": order_id, "tenant": tenant.name, "key": key}

    response = _get(app, "/orders/7", **{"x-tenant": "acme"})
    assert _body(response) == {"id": 7, "tenant": "acme", "key": "acme:inv-1"}


def test_a_provider_runs_once_per_invocation_unless_asked_otherwise() -> None:
    app = App("t")
    calls: list[int] = []

    def counter() -> int:
        calls.append(1)
        return len(calls)

    def twice(a: int = Depends(counter), b: int = Depends(counter)) -> tuple[int, int]:
        return a, b

    @app.get("/cached")
    def cached(pair: tuple[int, int] = Depends(twice), c: int = Depends(counter)) -> list[int]:
        return [*pair, c]

    @app.get("/fresh")
    def fresh(
        a: int = Depends(counter, use_cache=False), b: int = Depends(counter, use_cache=False)
    ) -> list[int]:
        return [a, b]

    assert _body(_get(app, "/cached")) == [1, 1, 1]
    assert _body(_get(app, "/cached")) == [2, 2, 2]  # a new invocation, a new value
    assert _body(_get(app, "/fresh")) == [3, 4]


def test_a_missing_header_of_a_provider_is_a_422_with_every_field() -> None:
    app = App("t")

    @app.get("/t")
    def handler(limit: int, tenant: Tenant = Depends(current_tenant)) -> str:
        return tenant.name

    response = _get(app, "/t")
    assert response.status == 422
    locations = [error["loc"] for error in _body(response)["errors"]]
    assert ["header", "x-tenant"] in locations
    assert ["query", "limit"] in locations


def test_generator_providers_tear_down_after_the_response_in_reverse_order() -> None:
    app = App("t")
    log: list[str] = []

    def first() -> Iterator[str]:
        log.append("open first")
        yield "first"
        log.append("close first")

    async def second(a: str = Depends(first)) -> AsyncIterator[str]:
        log.append("open second")
        yield f"{a}+second"
        log.append("close second")

    @app.middleware
    def after(call: Any, event: Any, ctx: Context) -> Any:
        result = call(event)
        log.append("response ready")
        return result

    @app.get("/g")
    def handler(value: str = Depends(second)) -> str:
        log.append("handler")
        return value

    assert _get(app, "/g").body == b"first+second"
    assert log == [
        "open first", "open second", "handler", "response ready", "close second", "close first",
    ]  # fmt: skip


def test_a_generator_provider_sees_the_handler_error_and_the_client_gets_the_error_response() -> (
    None
):
    app = App("t")
    seen: list[str] = []

    def session() -> Iterator[str]:
        try:
            yield "session"
        except ValueError as exc:
            seen.append(f"rollback: {exc}")
            raise

    @app.get("/fail")
    def fail(s: str = Depends(session)) -> None:
        raise ValueError("bad")

    assert _get(app, "/fail").status == 500
    assert seen == ["rollback: bad"]


def test_a_failing_teardown_is_logged_and_the_response_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App("t")

    def flaky() -> Iterator[int]:
        yield 1
        raise OSError("connection reset on close")

    @app.get("/x")
    def handler(v: int = Depends(flaky)) -> int:
        return v

    assert _get(app, "/x").body == b"1"
    assert "a dependency's teardown failed" in caplog.text


def test_process_scoped_values_are_created_once_and_torn_down_on_close() -> None:
    app = App("t")
    created: list[str] = []
    closed: list[str] = []

    def config() -> dict[str, str]:
        created.append("config")
        return {"table": "orders"}

    def table(cfg: dict[str, str] = Depends(config, scope="process")) -> Iterator[str]:
        created.append("table")
        yield f"table:{cfg['table']}"
        closed.append("table")

    @app.get("/t")
    def handler(t: str = Depends(table, scope="process")) -> str:
        return t

    for _ in range(3):
        assert _get(app, "/t").body == b"table:orders"
    assert created == ["config", "table"]
    assert closed == []
    app.close()
    assert closed == ["table"]
    _get(app, "/t")
    assert created == ["config", "table", "config", "table"]


def test_concurrent_first_invocations_create_one_process_value() -> None:
    app = App("t")
    created: list[int] = []
    gate = threading.Barrier(8)

    def client() -> int:
        created.append(1)
        return 42

    @app.get("/c")
    def handler(c: int = Depends(client, scope="process")) -> int:
        return c

    def hit() -> None:
        gate.wait()
        assert _get(app, "/c").body == b"42"

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert created == [1]


def test_concurrent_async_first_invocations_create_one_process_value() -> None:
    app = App("t")
    created: list[int] = []

    async def client() -> int:
        created.append(1)
        await asyncio.sleep(0.01)
        return 42

    @app.get("/c")
    async def handler(c: int = Depends(client, scope="process")) -> int:
        return c

    async def many() -> list[HttpResponse]:
        request = HttpRequest("GET", "/c")
        return await asyncio.gather(*(app.handle_http_async(request, _ctx()) for _ in range(10)))

    assert [r.body for r in asyncio.run(many())] == [b"42"] * 10
    assert created == [1]


def test_a_process_scoped_provider_may_not_take_invocation_values() -> None:
    app = App("t")

    def per_request(ctx: Context) -> str:
        return ctx.invocation_id

    @app.get("/bad")
    def handler(v: str = Depends(per_request, scope="process")) -> str:
        return v

    response = _get(app, "/bad")
    assert response.status == 500


def test_overrides_replace_a_provider_for_tests() -> None:
    app = App("t")

    def real_db() -> str:
        raise AssertionError("the real database must not be used in this test")

    @app.get("/db")
    def handler(db: str = Depends(real_db, scope="process")) -> str:
        return db

    app.dependency_overrides[real_db] = lambda: "fake"
    assert _get(app, "/db").body == b"fake"


def test_route_router_and_app_dependencies_run_for_their_effect() -> None:
    calls: list[str] = []

    def audit(ctx: Context) -> None:
        calls.append("app")

    def admin_only(x_role: Annotated[str, Header()]) -> None:
        calls.append("router")
        if x_role != "admin":
            from polyserve import HttpError

            raise HttpError(403, "forbidden", "admins only")

    app = App("t", dependencies=[Depends(audit)])
    router = Router(dependencies=[Depends(admin_only)])

    @router.get("/admin")
    def admin() -> str:
        return "ok"

    app.include_router(router)
    assert _get(app, "/admin", **{"x-role": "admin"}).body == b"ok"
    assert _get(app, "/admin", **{"x-role": "guest"}).status == 403
    assert calls == ["app", "router", "app", "router"]


def test_event_handlers_take_dependencies_too() -> None:
    app = App("t")

    def source(msg: Message) -> str:
        return f"from {msg.id}"

    @app.queue("orders")
    def on_order(msg: Message, origin: str = Depends(source)) -> str:
        return origin

    event = Message(id="7", body=b"{}")
    assert app.handle_event(Trigger.QUEUE, "orders", event, _ctx()) == "from 7"


class Clock:
    def now(self) -> str:
        return "noon"


def test_depends_without_a_provider_uses_the_annotation() -> None:
    app = App("t")

    @app.get("/now")
    def now(clock: Annotated[Clock, Depends()]) -> str:
        return clock.now()

    assert _get(app, "/now").body == b"noon"


def test_depends_checks_its_arguments() -> None:
    with pytest.raises(ConfigurationError):
        Depends(lambda: 1, scope="request")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ConfigurationError):
        Depends("not callable")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ConfigurationError):
        App("t").get("/x", dependencies=[lambda: 1])(lambda: None)  # type: ignore[list-item]


def test_verifiers_are_dependencies_that_answer_401() -> None:
    from polyserve.auth import ApiKeys

    keys = ApiKeys({"reporting": "s3cret-key"})
    app = App("t")

    @app.get("/reports")
    def reports(ctx: Context, caller: object = Depends(keys)) -> dict[str, str]:
        assert ctx.principal is not None
        return {"caller": ctx.principal.id}

    @app.get("/admin", dependencies=[Depends(keys)])
    def admin() -> str:
        return "ok"

    assert _body(_get(app, "/reports", **{"x-api-key": "s3cret-key"})) == {"caller": "reporting"}
    assert _get(app, "/admin", **{"x-api-key": "s3cret-key"}).body == b"ok"
    denied = _get(app, "/admin", **{"x-api-key": "wrong"})
    assert denied.status == 401
    assert _body(denied)["code"] == "invalid_api_key"
    assert "www-authenticate" in denied.headers
    assert _get(app, "/reports").status == 401


def test_a_provider_that_raises_is_a_problem_response_without_its_traceback() -> None:
    app = App("t")

    def broken() -> str:
        raise RuntimeError("database password is hunter2")

    @app.get("/x")
    def handler(v: Annotated[str, Depends(broken)]) -> str:
        return v

    response = _get(app, "/x")
    assert response.status == 500
    assert b"hunter2" not in response.body
    assert _body(response)["code"] == "internal_error"


class LockedError(Exception):
    pass


# Module level: the handlers' string annotations name them.
def locked() -> str:
    raise LockedError("the tenant is locked")


async def locked_async() -> str:
    raise LockedError("the tenant is locked")


_SESSION_OPENS = False


def locked_session() -> Iterator[str]:
    # A generator that fails before it yields, as a session that cannot open does.
    if not _SESSION_OPENS:
        raise LockedError("the tenant is locked")
    yield "session"


def test_a_provider_that_raises_goes_through_the_exception_handlers_for_http_and_events() -> None:
    app = App("t")

    @app.exception_handler(LockedError)
    def handled(exc: Exception, event: object, ctx: Context) -> Any:
        if isinstance(event, HttpRequest):
            return HttpResponse.problem(423, "locked", str(exc))
        return SetAside(str(exc))

    @app.get("/sync")
    def sync_route(v: Annotated[str, Depends(locked)]) -> str:
        return v

    @app.get("/async")
    async def async_route(v: Annotated[str, Depends(locked_async)]) -> str:
        return v

    @app.get("/generator")
    def generator_route(v: Annotated[str, Depends(locked_session)]) -> str:
        return v

    @app.queue("orders")
    def on_order(msg: Message, v: Annotated[str, Depends(locked)]) -> None:
        raise AssertionError("not reached")

    for path in ("/sync", "/async", "/generator"):
        response = _get(app, path)
        assert (response.status, _body(response)["code"]) == (423, "locked"), path
    response = asyncio.run(app.handle_http_async(HttpRequest("GET", "/async"), _ctx()))
    assert response.status == 423
    records = [Message(id="m1", body=b"{}")]
    result = app.handle_batch(
        Trigger.QUEUE, records, _ctx(), decode=lambda m: ("orders", m), item_id=lambda m: m.id
    )
    assert result.set_aside == ("m1",)
    assert result.failed == ()
