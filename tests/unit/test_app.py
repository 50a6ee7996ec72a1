from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import json
import logging
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from polyserve import (
    CORS,
    App,
    CloudEvent,
    ConfigurationError,
    Context,
    EventValidationError,
    Header,
    Headers,
    HttpError,
    HttpRequest,
    HttpResponse,
    Message,
    Query,
    QueryParams,
    ScheduleEvent,
    StorageAction,
    StorageEvent,
    Trigger,
    UnsupportedEventError,
)

JSON = Headers({"content-type": "application/json"})


class Pet(BaseModel):
    name: str = Field(min_length=1)
    age: int = 0


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _ctx() -> Context:
    return Context("test", invocation_id="inv-1", function_name="fn")


def _body(response: HttpResponse) -> Any:
    return json.loads(response.body)


def _get(app: App, path: str, query: str = "", **headers: str) -> HttpResponse:
    request = HttpRequest("GET", path, QueryParams.from_string(query), Headers(headers.items()))
    return app.handle_http(request, _ctx())


def _post(app: App, path: str, body: bytes, headers: Headers = JSON) -> HttpResponse:
    return app.handle_http(HttpRequest("POST", path, headers=headers, body=body), _ctx())


@pytest.fixture
def app() -> App:
    app = App("test")

    @app.get("/items/{item_id:int}")
    def item(
        item_id: int,
        verbose: bool = False,
        tags: list[str] | None = None,
        color: Color = Color.RED,
        mode: Literal["a", "b"] = "a",
        limit: Annotated[int, Query(alias="max")] = 10,
        api_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        return {
            "id": item_id, "verbose": verbose, "tags": tags, "color": color,
            "mode": mode, "limit": limit, "api_key": api_key,
        }  # fmt: skip

    @app.get("/need")
    def need(q: int) -> int:
        return q

    @app.post("/pets", status=201)
    def create(pet: Pet, ctx: Context) -> Pet:
        assert ctx.function_name == "fn"
        return pet

    @app.post("/points")
    def points(p: Point) -> Point:
        return Point(p.x * 2, p.y * 2)

    @app.post("/raw")
    def raw(body: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
        return {"body": body, "len": len(request.body)}

    @app.post("/opt")
    def opt(pet: Pet | None = None) -> str:
        return "none" if pet is None else pet.name

    @app.get("/none")
    def none() -> None:
        return None

    @app.get("/bytes")
    def raw_bytes() -> bytes:
        return b"\x00\x01"

    @app.get("/teapot")
    def teapot() -> None:
        raise HttpError(418, "teapot", "short and stout", headers={"x-why": "tea"})

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret database password")

    @app.get("/async/{name}")
    async def hello(name: str) -> str:
        await asyncio.sleep(0)
        return f"hello {name}"

    return app


def test_path_query_and_header_parameters_are_converted(app: App) -> None:
    response = _get(
        app, "/items/7", "verbose=yes&tags=a&tags=b&color=blue&mode=b&max=3", **{"Api-Key": "k"}
    )
    assert response.status == 200
    assert _body(response) == {
        "id": 7, "verbose": True, "tags": ["a", "b"], "color": "blue",
        "mode": "b", "limit": 3, "api_key": "k",
    }  # fmt: skip


def test_invalid_parameters_give_422_listing_every_field(app: App) -> None:
    response = _get(app, "/items/7", "verbose=maybe&color=green&mode=c&max=x")
    assert response.status == 422
    body = _body(response)
    assert body["code"] == "validation_error"
    assert response.headers["content-type"] == "application/problem+json"
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert locs == {("query", "verbose"), ("query", "color"), ("query", "mode"), ("query", "max")}


def test_missing_required_query_is_422(app: App) -> None:
    response = _get(app, "/need")
    assert response.status == 422
    assert _body(response)["errors"] == [
        {"loc": ["query", "q"], "message": "field required", "type": "missing"}
    ]


def test_pydantic_body_is_validated(app: App) -> None:
    ok = _post(app, "/pets", b'{"name": "Rex", "age": 3}')
    assert ok.status == 201
    assert _body(ok) == {"name": "Rex", "age": 3}
    bad = _post(app, "/pets", b'{"name": "", "age": "old"}')
    assert bad.status == 422
    assert {tuple(e["loc"]) for e in _body(bad)["errors"]} == {("body", "name"), ("body", "age")}


def test_malformed_json_is_400_invalid_json(app: App) -> None:
    response = _post(app, "/pets", b'{"name": ')
    assert response.status == 400
    assert _body(response)["code"] == "invalid_json"


def test_wrong_content_type_for_a_model_is_415(app: App) -> None:
    response = _post(app, "/pets", b"name=Rex", Headers({"content-type": "text/plain"}))
    assert response.status == 415
    assert _body(response)["code"] == "unsupported_media_type"


def test_json_suffix_content_types_are_accepted(app: App) -> None:
    headers = Headers({"content-type": "application/merge-patch+json; charset=utf-8"})
    assert _post(app, "/pets", b'{"name": "Rex"}', headers).status == 201


def test_missing_required_body_is_422_and_optional_body_defaults(app: App) -> None:
    response = _post(app, "/pets", b"")
    assert response.status == 422
    assert _body(response)["errors"][0]["loc"] == ["body"]
    assert _post(app, "/opt", b"").body == b"none"
    assert _post(app, "/opt", b'{"name": "Rex"}').body == b"Rex"


def test_dataclass_body_and_result(app: App) -> None:
    response = _post(app, "/points", b'{"x": 1, "y": 2}')
    assert _body(response) == {"x": 2, "y": 4}


def test_dict_body_and_request_parameter(app: App) -> None:
    response = _post(app, "/raw", b'{"a": 1}')
    assert _body(response) == {"body": {"a": 1}, "len": 8}
    assert _post(app, "/raw", b"[1]").status == 422


def test_return_values_render(app: App) -> None:
    none = _get(app, "/none")
    assert (none.status, none.body) == (204, b"")
    data = _get(app, "/bytes")
    assert data.media_type == "application/octet-stream"
    assert data.body == b"\x00\x01"


def test_http_error_keeps_status_code_and_headers(app: App) -> None:
    response = _get(app, "/teapot")
    assert response.status == 418
    assert response.headers["x-why"] == "tea"
    body = _body(response)
    assert (body["code"], body["detail"], body["invocation_id"]) == (
        "teapot", "short and stout", "inv-1",
    )  # fmt: skip


def test_unhandled_error_is_a_generic_500_and_the_trace_goes_to_the_log(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="polyserve"):
        response = _get(app, "/boom")
    assert response.status == 500
    assert b"secret" not in response.body
    assert b"Traceback" not in response.body
    assert _body(response)["code"] == "internal_error"
    assert _body(response)["invocation_id"] == "inv-1"
    logged = json.loads(caplog.records[-1].getMessage())
    assert logged["invocation_id"] == "inv-1"
    assert "secret database password" in logged["traceback"]


def test_404_and_405_with_allow(app: App) -> None:
    missing = _get(app, "/nothing")
    assert missing.status == 404
    assert _body(missing)["code"] == "not_found"
    request = HttpRequest("DELETE", "/pets")
    wrong = app.handle_http(request, _ctx())
    assert wrong.status == 405
    assert wrong.headers["allow"] == "OPTIONS, POST"


def test_options_without_cors_lists_allowed_methods(app: App) -> None:
    response = app.handle_http(HttpRequest("OPTIONS", "/items/1"), _ctx())
    assert response.status == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


def test_head_answers_like_get_without_a_body(app: App) -> None:
    response = app.handle_http(HttpRequest("HEAD", "/items/1"), _ctx())
    assert response.status == 200
    assert response.body == b""
    assert int(response.headers["content-length"]) > 0


@pytest.mark.parametrize("path", ["/items/1/../2", "/items/%2e%2e/1", "/items/1%2F2"])
def test_path_tricks_never_reach_a_route(app: App, path: str) -> None:
    from urllib.parse import unquote

    response = app.handle_http(HttpRequest("GET", unquote(path)), _ctx())
    assert response.status in (400, 404)


def test_oversized_body_is_413() -> None:
    small = App("small", max_body_size=10)

    @small.post("/x")
    def x(body: bytes) -> int:
        return len(body)

    assert _post(small, "/x", b"0123456789").status == 200
    response = _post(small, "/x", b"0123456789A")
    assert response.status == 413
    assert _body(response)["code"] == "payload_too_large"


def test_a_path_without_parameters_answers_alike_once_it_is_known() -> None:
    # After its first request, such a path skips route matching: every rule that
    # applies on the way in must still apply.
    app = App("known", max_body_size=10)
    calls: list[str] = []

    @app.get("/ping")
    def ping() -> str:
        calls.append("ping")
        return "pong"

    @app.post("/ping")
    def ping_post(body: bytes) -> int:
        return len(body)

    for _ in range(2):
        assert _get(app, "/ping").body == b"pong"
        assert _get(app, "/ping/").body == b"pong"
        assert _post(app, "/ping", b"0123456789").body == b"10"
        assert _post(app, "/ping", b"0123456789A").status == 413
        head = app.handle_http(HttpRequest("HEAD", "/ping"), _ctx())
        assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "4")
        assert app.handle_http(HttpRequest("DELETE", "/ping"), _ctx()).status == 405
        assert app.handle_http(HttpRequest("get", "/ping"), _ctx()).body == b"pong"

    with pytest.raises(ConfigurationError):
        app.get("/ping")(lambda: "shadowed")

    @app.get("/{name}")
    def by_name(name: str) -> str:
        return name

    assert _get(app, "/ping").body == b"pong"
    assert _get(app, "/other").body == b"other"
    assert calls == ["ping"] * 9


def test_async_handlers_run_from_sync_and_async_entry_points(app: App) -> None:
    assert _get(app, "/async/bob").body == b"hello bob"
    response = asyncio.run(app.handle_http_async(HttpRequest("GET", "/async/amy"), _ctx()))
    assert response.body == b"hello amy"
    sync_route = asyncio.run(app.handle_http_async(HttpRequest("GET", "/items/2"), _ctx()))
    assert _body(sync_route)["id"] == 2


def test_cors_preflight_and_simple_requests() -> None:
    app = App("cors", cors=CORS(allow_origins=("https://a.example",), allow_credentials=True))

    @app.get("/x")
    def x() -> str:
        return "x"

    preflight = HttpRequest(
        "OPTIONS", "/x",
        headers=Headers({"origin": "https://a.example", "access-control-request-method": "GET"}),
    )  # fmt: skip
    answer = app.handle_http(preflight, _ctx())
    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == "https://a.example"
    assert answer.headers["access-control-allow-credentials"] == "true"
    simple = _get(app, "/x", origin="https://a.example")
    assert simple.headers["access-control-allow-origin"] == "https://a.example"
    assert simple.headers["vary"] == "Origin"
    other = _get(app, "/x", origin="https://evil.example")
    assert "access-control-allow-origin" not in other.headers
    errors = _get(app, "/missing", origin="https://a.example")
    assert errors.status == 404
    assert "access-control-allow-origin" in errors.headers


class Order(BaseModel):
    order_id: int


def test_events_dispatch_by_trigger_and_name_with_payload_models() -> None:
    app = App("events")
    seen: list[Any] = []

    @app.queue("orders")
    def on_order(order: Order, msg: Message, ctx: Context) -> str:
        seen.append((order.order_id, msg.id, ctx.provider))
        return "done"

    @app.storage("uploads", actions=["deleted"])
    def on_delete(event: StorageEvent) -> None:
        seen.append(event.key)

    @app.schedule("tick", rate="1 minute")
    def tick(event: ScheduleEvent, payload: dict[str, int]) -> None:
        seen.append(payload)

    @app.cloudevent("*")
    def anything(event: CloudEvent) -> None:
        seen.append(event.type)

    ctx = _ctx()
    assert (
        app.handle_event(Trigger.QUEUE, "orders", Message("m1", b'{"order_id": 5}'), ctx) == "done"
    )
    deleted = StorageEvent("e", StorageAction.DELETED, "uploads", "a.txt")
    app.handle_event(Trigger.STORAGE, "uploads", deleted, ctx)
    app.handle_event(Trigger.SCHEDULE, "tick", ScheduleEvent("s", "tick", payload={"n": 1}), ctx)
    app.handle_event(Trigger.CLOUDEVENT, "x.y", CloudEvent("1", "src", "x.y"), ctx)
    assert seen == [(5, "m1", "test"), "a.txt", {"n": 1}, "x.y"]

    created = StorageEvent("e", StorageAction.CREATED, "uploads", "a.txt")
    with pytest.raises(UnsupportedEventError) as info:
        app.handle_event(Trigger.STORAGE, "uploads", created, ctx)
    assert info.value.description == {"trigger": "storage", "name": "uploads", "action": "created"}
    with pytest.raises(UnsupportedEventError, match="registered queue names: \\['orders'\\]"):
        app.handle_event(Trigger.QUEUE, "unknown", Message("m"), ctx)


def test_invalid_message_payload_raises_event_validation_error() -> None:
    app = App("events")

    @app.queue("orders")
    def on_order(order: Order) -> None: ...

    with pytest.raises(EventValidationError) as info:
        app.handle_event(Trigger.QUEUE, "orders", Message("m", b'{"order_id": "x"}'), _ctx())
    assert info.value.errors[0].loc == ("body", "order_id")


def test_handler_declaring_another_event_type_is_unsupported() -> None:
    app = App("events")

    @app.stream("table")
    def on_change(event: CloudEvent) -> None: ...

    with pytest.raises(UnsupportedEventError, match="expects CloudEvent but a Message arrived"):
        app.handle_event(Trigger.STREAM, "table", Message("m"), _ctx())


def test_async_event_handlers() -> None:
    app = App("events")

    @app.queue("q")
    async def on_message(msg: Message) -> str:
        await asyncio.sleep(0)
        return msg.text

    assert app.handle_event(Trigger.QUEUE, "q", Message("m", b"hi"), _ctx()) == "hi"
    result = asyncio.run(app.handle_event_async(Trigger.QUEUE, "q", Message("m", b"yo"), _ctx()))
    assert result == "yo"


def test_retry_and_store_outages_are_exposed_503s_with_retry_after() -> None:
    from polyserve import Retry, StoreUnavailableError

    app = App("busy")

    @app.get("/later")
    def later() -> None:
        raise Retry("warming up", delay=2.5)

    @app.get("/store")
    def store() -> None:
        raise StoreUnavailableError("idempotency store unreachable")

    later_response = _get(app, "/later")
    assert later_response.status == 503
    assert later_response.headers["retry-after"] == "3"
    assert _body(later_response)["code"] == "retry_requested"
    store_response = _get(app, "/store")
    assert (store_response.status, _body(store_response)["code"]) == (503, "store_unavailable")


class _Owner(BaseModel):
    full_name: str = Field(alias="fullName")
    since: dt.date


class _Pet(BaseModel):
    name: str
    tags: list[str] = []
    owner: _Owner | None = None


class _Deferred(BaseModel):
    model_config = {"defer_build": True}
    x: int


@pytest.mark.parametrize(
    "result",
    [
        _Pet(name="Rex"),
        _Pet(name="Ünï", tags=["a", "b"],
             owner=_Owner(fullName="Ada", since=dt.date(2020, 1, 2))),
        _Deferred(x=3),
    ],
)  # fmt: skip
def test_model_results_render_as_model_dump_json(result: BaseModel) -> None:
    app = App("models")
    app.get("/r")(lambda: result)
    response = app.handle_http(HttpRequest("GET", "/r"), Context("test"))
    assert response.status == 200
    assert response.media_type == "application/json"
    assert json.loads(response.body) == json.loads(result.model_dump_json())
    # Twice: the second request renders by the kind learned on the first.
    again = app.handle_http(HttpRequest("GET", "/r"), Context("test"))
    assert again.body == response.body


def test_a_keyword_only_body_binds_like_a_positional_one() -> None:
    app = App("kw")

    @app.post("/pets", status=201)
    def create(*, pet: _Pet) -> _Pet:
        return pet

    ok = app.handle_http(
        HttpRequest("POST", "/pets", headers=Headers({"content-type": "application/json"}),
                    body=b'{"name": "Rex"}'),
        Context("test"),
    )  # fmt: skip
    assert (ok.status, json.loads(ok.body)["name"]) == (201, "Rex")
    bad = app.handle_http(HttpRequest("POST", "/pets", body=b'{"name": 7}'), Context("test"))
    assert bad.status == 422
    assert json.loads(bad.body)["errors"][0]["loc"] == ["body", "name"]


_DEEP = b"[" * 100_000 + b"]" * 100_000
_DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


@pytest.mark.parametrize("body", [_DEEP, _DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("path", ["/pets", "/raw", "/opt", "/points"])
def test_json_nested_past_the_stack_is_400_invalid_json_on_every_body_route(
    app: App, path: str, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="polyserve"):
        response = _post(app, path, body)
        suffixed = _post(app, path, body, Headers({"content-type": "application/x+json"}))
    for answer in (response, suffixed):
        assert answer.status == 400, answer.body[:200]
        assert _body(answer)["code"] == "invalid_json"
    assert "RecursionError" not in caplog.text


class Tree(BaseModel):
    children: list[Tree] = []


def test_pydantic_refuses_deep_json_itself_and_that_is_invalid_json_too() -> None:
    app = App("deep")

    @app.post("/tree")
    def tree(t: Tree) -> int:
        return len(t.children)

    # pydantic's own parser stops at 200 levels, far below the stack's limit.
    deep = b'{"children":[' * 300 + b"{}" + b"]}" * 300
    response = _post(app, "/tree", deep)
    assert (response.status, _body(response)["code"]) == (400, "invalid_json")
    assert _post(app, "/tree", b'{"children":[' * 20 + b"{}" + b"]}" * 20).status == 200


def test_a_message_nested_past_the_stack_fails_its_record_alone_with_a_typed_error() -> None:
    app = App("events")
    handled: list[str] = []

    @app.queue("orders")
    def on_order(order: Order, msg: Message) -> None:
        handled.append(msg.id)

    @app.queue("plain")
    def on_plain(payload: dict[str, Any], msg: Message) -> None:
        handled.append(msg.id)

    records = [
        ("orders", Message("a", b'{"order_id": 1}')),
        ("orders", Message("deep", _DEEP)),
        ("plain", Message("deep-dict", _DEEP_OBJECT)),
        ("plain", Message("b", b'{"x": 1}')),
    ]
    result = app.handle_batch(
        Trigger.QUEUE, records, _ctx(), decode=lambda r: r, item_id=lambda r: r[1].id
    )
    assert result.succeeded == ("a", "b")
    assert handled == ["a", "b"]
    assert [(f.item_id, type(f.error).__name__) for f in result.failed] == [
        ("deep", "MalformedEventError"),
        ("deep-dict", "MalformedEventError"),
    ]
    assert all(getattr(f.error, "code", None) == "invalid_json" for f in result.failed)


def _injecting_app() -> App:
    app = App("inject")
    bad = "a\r\nSet-Cookie: stolen=1"

    @app.get("/json")
    def json_headers() -> HttpResponse:
        return HttpResponse.json({}, headers={"X-A": bad})

    @app.get("/with")
    def with_header() -> HttpResponse:
        return HttpResponse.json({}).with_header("X-A", bad)

    @app.get("/cookie")
    def cookie() -> HttpResponse:
        return HttpResponse.json({}).set_cookie("s", "1", path="/" + bad)

    @app.get("/error")
    def error() -> None:
        raise HttpError(409, "conflict", "taken", headers={"X-A": bad})

    @app.get("/name")
    def name() -> HttpResponse:
        return HttpResponse.empty(headers={"X-A\r\nX-B": "1"})

    @app.get("/async")
    async def async_headers() -> HttpResponse:
        return HttpResponse.json({}, headers={"X-A": bad})

    return app


@pytest.mark.parametrize("path", ["/json", "/with", "/cookie", "/error", "/name", "/async"])
def test_a_header_http_cannot_carry_is_a_500_whose_log_names_it_but_not_its_value(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = _injecting_app()
    with caplog.at_level(logging.ERROR, logger="polyserve"):
        responses = [
            _get(app, path),
            asyncio.run(app.handle_http_async(HttpRequest("GET", path), _ctx())),
        ]
    for response in responses:
        assert response.status == 500
        assert _body(response)["code"] == "internal_error"
        assert response.headers.multi_items() == [("content-type", "application/problem+json")]
    logged = [json.loads(r.getMessage()) for r in caplog.records]
    assert len(logged) == 2
    for line in logged:
        assert line["error_type"] == "InvalidHeaderError"
        assert "response header" in line["traceback"]
        assert "stolen" not in json.dumps(line)


def test_an_error_class_with_headers_http_cannot_carry_still_gets_an_answer() -> None:
    class Broken(HttpError):
        @property
        def headers(self) -> dict[str, str]:
            return {"x-a": "\n"}

    app = App("broken")

    @app.get("/x")
    def x() -> None:
        raise Broken(400, "broken", "a client error")

    response = _get(app, "/x")
    assert (response.status, _body(response)["code"]) == (500, "internal_error")


@pytest.mark.parametrize(
    "settings",
    [
        {"allow_origins": ("https://a.example\r\nx: y",)},
        {"allow_methods": ("GET", "PO ST")},
        {"allow_headers": ("x-a\n",)},
        {"expose_headers": ("x-a", "")},
    ],
)
def test_cors_settings_http_cannot_carry_are_refused_at_set_up(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="CORS: a setting cannot be sent"):
        CORS(**settings)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("G\ud800T", "/pets", 405),
        ("GET\x00", "/pets", 405),
        ("P" * 100_000, "/pets", 405),
        ("GET", "/nothing/\ud800", 404),
        ("GET", "/" + "\udc80" * 50_000, 404),
        ("GET", "/\x00", 400),
        ("DELETE", "/items/\ud800", 404),
        ("DELETE", "/items/1", 405),
        ("g\ud800t", "/pets\ud800/..", 400),
    ],
)
def test_any_text_in_method_or_path_gets_a_problem_answer(
    app: App, method: str, path: str, status: int
) -> None:
    request = HttpRequest(method, path, headers=Headers({"x-\ud800": "\ud800\x00"}))
    for response in (
        app.handle_http(request, _ctx()),
        asyncio.run(app.handle_http_async(request, _ctx())),
    ):
        assert response.status == status
        assert response.headers["content-type"] == "application/problem+json"
        response.body.decode("utf-8")
        assert _body(response)["status"] == status
