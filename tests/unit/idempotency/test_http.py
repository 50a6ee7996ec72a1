from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from polyserve import App, Context, Headers, HttpRequest, HttpResponse
from polyserve.idempotency import REPLAYED_HEADER, MemoryStore, Record, RedisStore, idempotent
from polyserve_testkit.store_contract import namespaced


class Order(BaseModel):
    sku: str
    quantity: int = 1


def _ctx() -> Context:
    return Context("test", invocation_id="inv-1", function_name="fn")


def _post(path: str, body: Any, key: str | None = None, **headers: str) -> HttpRequest:
    pairs = {"content-type": "application/json", **headers}
    if key is not None:
        pairs["idempotency-key"] = key
    return HttpRequest("POST", path, headers=Headers(pairs), body=json.dumps(body).encode())


def _json(response: HttpResponse) -> Any:
    return json.loads(response.body)


def _header_app(store: MemoryStore, **options: Any) -> tuple[App, list[Order]]:
    app = App("shop")
    created: list[Order] = []

    @app.post("/orders/{shop}")
    @idempotent(store, mode="header", **options)
    def create_order(shop: str, order: Order) -> HttpResponse:
        created.append(order)
        response = HttpResponse.json({"shop": shop, "sku": order.sku, "n": len(created)}, 201)
        return response.with_header("set-cookie", "a=1").with_header("set-cookie", "b=2")

    return app, created


def test_header_mode_replays_status_headers_and_body() -> None:
    app, created = _header_app(MemoryStore())
    first = app.handle_http(_post("/orders/s1", {"sku": "A"}, key="k-1"), _ctx())
    again = app.handle_http(_post("/orders/s1", {"sku": "A"}, key="k-1"), _ctx())
    assert first.status == 201
    assert _json(first) == {"shop": "s1", "sku": "A", "n": 1}
    assert REPLAYED_HEADER.lower() not in first.headers
    assert again.status == 201
    assert again.body == first.body
    assert again.headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert again.headers.multi_items() == [
        *first.headers.multi_items(),
        ("idempotency-replayed", "true"),
    ]
    assert len(created) == 1


def test_header_mode_accepts_a_structured_field_string() -> None:
    app, created = _header_app(MemoryStore())
    app.handle_http(_post("/orders/s1", {"sku": "A"}, key='"k-2"'), _ctx())
    again = app.handle_http(_post("/orders/s1", {"sku": "A"}, key="k-2"), _ctx())
    assert again.headers.get(REPLAYED_HEADER) == "true"
    assert len(created) == 1


def test_header_mode_missing_key_is_400() -> None:
    app, created = _header_app(MemoryStore())
    response = app.handle_http(_post("/orders/s1", {"sku": "A"}), _ctx())
    assert response.status == 400
    assert response.media_type == "application/problem+json"
    assert _json(response)["code"] == "idempotency_key_missing"
    assert "Idempotency-Key" in _json(response)["detail"]
    assert created == []


def test_header_mode_without_required_key_runs_unprotected() -> None:
    app, created = _header_app(MemoryStore(), require_key=False)
    for _ in range(2):
        assert app.handle_http(_post("/orders/s1", {"sku": "A"}), _ctx()).status == 201
    assert len(created) == 2


def test_header_mode_other_payload_is_422() -> None:
    app, created = _header_app(MemoryStore())
    app.handle_http(_post("/orders/s1", {"sku": "A"}, key="k-3"), _ctx())
    other_body = app.handle_http(_post("/orders/s1", {"sku": "B"}, key="k-3"), _ctx())
    other_path = app.handle_http(_post("/orders/s2", {"sku": "A"}, key="k-3"), _ctx())
    for response in (other_body, other_path):
        assert response.status == 422
        assert _json(response)["code"] == "payload_mismatch"
    assert len(created) == 1


def test_header_mode_concurrent_request_is_409() -> None:
    app = App("slow")
    entered, release = threading.Event(), threading.Event()

    @app.post("/pay")
    @idempotent(MemoryStore(), mode="header")
    def pay(body: dict[str, int]) -> dict[str, int]:
        entered.set()
        assert release.wait(5)
        return {"paid": body["amount"]}

    responses: list[HttpResponse] = []
    request = _post("/pay", {"amount": 3}, key="k-4")
    thread = threading.Thread(target=lambda: responses.append(app.handle_http(request, _ctx())))
    thread.start()
    try:
        assert entered.wait(5)
        busy = app.handle_http(request, _ctx())
        assert busy.status == 409
        assert _json(busy)["code"] == "in_progress"
    finally:
        release.set()
        thread.join(5)
    assert responses[0].status == 200
    assert _json(app.handle_http(request, _ctx())) == {"paid": 3}


def test_header_mode_store_key_is_the_header() -> None:
    store = MemoryStore()
    app, _ = _header_app(store)
    app.handle_http(_post("/orders/s1", {"sku": "A"}, key="k-5"), _ctx())
    endpoint = app.routes[0].endpoint
    record = store.get(namespaced(endpoint, "k-5"))
    assert record is not None
    assert record.result is not None


def test_auto_mode_uses_the_header_when_sent() -> None:
    app = App("auto")
    store = MemoryStore()
    created: list[Order] = []

    @app.post("/orders", status=201)
    @idempotent(store)
    def create_order(order: Order) -> Order:
        created.append(order)
        return order

    first = app.handle_http(_post("/orders", {"sku": "A"}, key="k-6"), _ctx())
    again = app.handle_http(_post("/orders", {"sku": "A"}, key="k-6"), _ctx())
    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body == b'{"sku":"A","quantity":1}'
    assert len(created) == 1
    assert store.get(namespaced(create_order, "k-6")) is not None


def test_auto_mode_without_header_hashes_what_the_handler_receives() -> None:
    app = App("auto")
    created: list[Order] = []

    @app.post("/orders", status=201)
    @idempotent(MemoryStore())
    def create_order(order: Order) -> Order:
        created.append(order)
        return order

    app.handle_http(_post("/orders", {"sku": "A"}), _ctx())
    app.handle_http(_post("/orders", {"quantity": 1, "sku": "A"}), _ctx())
    app.handle_http(_post("/orders", {"sku": "B"}), _ctx())
    assert [o.sku for o in created] == ["A", "B"]


def test_auto_mode_with_request_hashes_method_path_and_body() -> None:
    app = App("auto")
    store = MemoryStore()
    seen: list[str] = []

    @app.post("/things/{name}")
    @idempotent(store)
    def create(name: str, request: HttpRequest, context: Context) -> dict[str, str]:
        assert isinstance(context, Context)
        seen.append(request.path)
        return {"name": name}

    app.handle_http(_post("/things/a", {"x": 1}, **{"x-trace": "1"}), _ctx())
    app.handle_http(_post("/things/a", {"x": 1}, **{"x-trace": "2"}), _ctx())
    app.handle_http(_post("/things/b", {"x": 1}), _ctx())
    app.handle_http(_post("/things/a", {"x": 2}), _ctx())
    assert seen == ["/things/a", "/things/b", "/things/a"]


def test_handler_still_receives_its_own_parameters() -> None:
    app = App("binding")
    got: dict[str, Any] = {}

    @app.post("/items/{item_id:int}")
    @idempotent(MemoryStore())
    def update(item_id: int, order: Order, verbose: bool = False, **extra: Any) -> str:
        got.update(item_id=item_id, order=order, verbose=verbose, extra=extra)
        return "ok"

    request = _post("/items/7", {"sku": "Z"}, key="k-7")
    request = HttpRequest(
        request.method, request.path, query=request.query.from_string("verbose=true"),
        headers=request.headers, body=request.body,
    )  # fmt: skip
    response = app.handle_http(request, _ctx())
    assert response.status == 200, response.body
    assert got == {"item_id": 7, "order": Order(sku="Z"), "verbose": True, "extra": {}}


def test_async_route_through_handle_http_async() -> None:
    app = App("async")
    created: list[str] = []

    @app.post("/jobs")
    @idempotent(MemoryStore(), mode="header")
    async def start(body: dict[str, str]) -> dict[str, str]:
        created.append(body["name"])
        await asyncio.sleep(0)
        return {"started": body["name"]}

    async def main() -> list[HttpResponse]:
        request = _post("/jobs", {"name": "j"}, key="k-8")
        return [await app.handle_http_async(request, _ctx()) for _ in range(2)]

    first, again = asyncio.run(main())
    assert _json(first) == _json(again) == {"started": "j"}
    assert created == ["j"]
    # The sync entry point runs the same async handler and sees the stored result.
    assert app.handle_http(_post("/jobs", {"name": "j"}, key="k-8"), _ctx()).body == first.body


def test_plain_value_replay_renders_like_the_first_response() -> None:
    app = App("plain")

    @app.post("/notes", status=201)
    @idempotent(MemoryStore(), mode="header")
    def add(body: dict[str, str]) -> str:
        return body["text"]

    first = app.handle_http(_post("/notes", {"text": "hi"}, key="k-9"), _ctx())
    again = app.handle_http(_post("/notes", {"text": "hi"}, key="k-9"), _ctx())
    assert (first.status, first.headers, first.body) == (again.status, again.headers, again.body)


def test_header_mode_on_an_event_is_a_configuration_error() -> None:
    from polyserve import ConfigurationError

    @idempotent(MemoryStore(), mode="header")
    def handle(value: int) -> None:
        return None

    with pytest.raises(ConfigurationError, match="HTTP routes only"):
        handle(1)


def test_stored_record_holds_the_rendered_response() -> None:
    store = MemoryStore()
    app, _ = _header_app(store)
    app.handle_http(_post("/orders/s1", {"sku": "A"}, key="k-10"), _ctx())
    record: Record | None = store.get(namespaced(app.routes[0].endpoint, "k-10"))
    assert record is not None
    assert record.result is not None
    kind, meta, body = record.result.split(b"\n", 2)
    assert kind == b"http"
    assert json.loads(meta)["status"] == 201
    assert ["set-cookie", "b=2"] in json.loads(meta)["headers"]
    assert json.loads(body) == {"shop": "s1", "sku": "A", "n": 1}


def test_unavailable_store_is_503_without_server_details() -> None:
    app = App("down")
    ran: list[bool] = []

    @app.post("/pay")
    @idempotent(RedisStore("redis://127.0.0.1:1/0", socket_timeout=1.0), mode="header")
    def pay() -> None:
        ran.append(True)

    response = app.handle_http(_post("/pay", {}, key="k-11"), _ctx())
    assert response.status == 503
    assert _json(response)["code"] == "store_unavailable"
    assert "127.0.0.1" not in _json(response)["detail"]
    assert ran == []
