from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import App, HttpResponse, MalformedEventError, UnsupportedEventError
from polyserve_cloudflare import WorkerContext, entrypoint, handlers
from polyserve_cloudflare._http import response_of as to_native
from polyserve_cloudflare._http import to_request as to_event
from polyserve_cloudflare.testing import (
    FakeExecutionContext,
    FakeHeaders,
    FakeRequest,
    FakeResponse,
    FakeRuntime,
)

if TYPE_CHECKING:
    from polyserve_cloudflare import Entrypoint

    from .conftest import Seen

ORIGIN = "https://shop.example.workers.dev"


def fetch(worker: Entrypoint, request: Any) -> FakeResponse:
    response = asyncio.run(worker.fetch(request))
    assert isinstance(response, FakeResponse)
    return response


class Wrapped:
    """The runtime's ``workers.Request``: the JavaScript request is its ``js_object``."""

    def __init__(self, js_object: FakeRequest) -> None:
        self.js_object = js_object


def test_request_is_translated(worker: Entrypoint, seen: Seen) -> None:
    request = FakeRequest(
        "post",
        f"{ORIGIN}/echo/a%20b/%C3%A9/x?tag=a&tag=b&q=%C3%A9+1&empty=",
        [
            ("X-Trace", "1"),
            ("x-trace", "2"),
            ("Cookie", "a=1; b=2"),
            ("CF-Connecting-IP", "203.0.113.9"),
            ("CF-Ray", "8f1b2c3d4e5f6071-AMS"),
            ("Content-Type", "application/octet-stream"),
        ],
        body=b"\x00\xff binary",
    )
    response = fetch(worker, request)
    assert response.status == 200
    (got,) = seen.requests
    assert got.method == "POST"
    assert got.path == "/echo/a b/é/x"
    assert got.query.get_all("tag") == ["a", "b"]
    assert got.query["q"] == "é 1"
    assert got.query["empty"] == ""
    assert got.headers["x-trace"] == "1, 2"
    assert got.cookies == {"a": "1", "b": "2"}
    assert got.body == b"\x00\xff binary"
    assert got.client == "203.0.113.9"
    assert got.request_id == "8f1b2c3d4e5f6071-AMS"
    assert got.raw is request


def test_set_cookie_request_headers_stay_separate() -> None:
    request = FakeRequest("GET", f"{ORIGIN}/", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    event = to_event(request, b"")
    assert event.headers.get_all("set-cookie") == ["a=1", "b=2"]


def test_headers_without_get_set_cookie_keep_what_entries_gives() -> None:
    class OldHeaders:
        def get(self, name: str) -> str | None:
            return None

        def entries(self) -> list[tuple[str, str]]:
            return [("set-cookie", "a=1, b=2"), ("x-a", "1")]

    request = FakeRequest("GET", f"{ORIGIN}/")
    request.headers = OldHeaders()  # type: ignore[assignment]  # an older runtime's Headers
    event = to_event(request, b"")
    assert event.headers.get_all("set-cookie") == ["a=1, b=2"]
    assert event.headers["x-a"] == "1"


def test_missing_ray_generates_an_id_shared_by_request_and_context(
    worker: Entrypoint, seen: Seen
) -> None:
    fetch(worker, FakeRequest("GET", f"{ORIGIN}/echo/x"))
    (got,) = seen.requests
    (ctx,) = seen.contexts
    assert len(got.request_id) == 32
    assert ctx.invocation_id == got.request_id
    assert got.client is None


def test_context_carries_provider_function_and_deadline(worker: Entrypoint, seen: Seen) -> None:
    before = time.time()
    fetch(worker, FakeRequest("GET", f"{ORIGIN}/echo/x", [("cf-ray", "ray-1")]))
    (ctx,) = seen.contexts
    assert ctx.provider == "cloudflare"
    assert ctx.function_name == "shop"
    assert ctx.invocation_id == "ray-1"
    assert ctx.deadline is not None
    assert before + 30 <= ctx.deadline <= time.time() + 30
    assert ctx.raw == WorkerContext(worker.env, worker.ctx, "fetch")
    assert ctx.raw.env == {"KV": "kv"}


def test_function_name_and_timeout_are_configurable(app: App, seen: Seen) -> None:
    cls = entrypoint(app, function_name="shop-edge", http_timeout=None, runtime=FakeRuntime())
    fetch(cls(FakeExecutionContext(), {}), FakeRequest("GET", f"{ORIGIN}/echo/x"))
    (ctx,) = seen.contexts
    assert ctx.function_name == "shop-edge"
    assert ctx.deadline is None


def test_the_runtime_request_wrapper_is_unwrapped(worker: Entrypoint, seen: Seen) -> None:
    inner = FakeRequest("PUT", f"{ORIGIN}/echo/w", body=b"x")
    assert fetch(worker, Wrapped(inner)).status == 200
    assert seen.requests[0].raw is inner


def test_path_parameters_and_async_handlers(worker: Entrypoint) -> None:
    response = fetch(worker, FakeRequest("GET", f"{ORIGIN}/items/42"))
    assert response.status == 200
    assert response.json() == {"id": 42}
    assert response.headers.get("content-type") == "application/json"


def test_unknown_route_is_a_problem_response(worker: Entrypoint) -> None:
    response = fetch(worker, FakeRequest("GET", f"{ORIGIN}/nowhere", [("cf-ray", "r-404")]))
    assert response.status == 404
    assert response.headers.get("content-type") == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["invocation_id"] == "r-404"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("not a url", "invalid_url"),
        ("/relative/path", "invalid_url"),
        ("http://[::1/echo/x", "invalid_url"),
        (f"{ORIGIN}/echo/%FF%FE", "invalid_path"),
        (f"{ORIGIN}/echo/../secret", "invalid_path"),
    ],
)
def test_malformed_urls_are_400(worker: Entrypoint, seen: Seen, url: str, code: str) -> None:
    response = fetch(worker, FakeRequest("GET", url))
    assert response.status == 400
    assert response.json()["code"] == code
    assert seen.requests == []


def test_to_event_raises_typed_errors() -> None:
    with pytest.raises(MalformedEventError) as info:
        to_event(FakeRequest("GET", f"{ORIGIN}/%C3"), b"")
    assert info.value.code == "invalid_path"


def test_unreadable_body_is_400(worker: Entrypoint, seen: Seen) -> None:
    request = FakeRequest("POST", f"{ORIGIN}/echo/x", body=b"data")
    asyncio.run(request.arrayBuffer())  # someone read it already
    response = fetch(worker, request)
    assert response.status == 400
    assert response.json()["code"] == "unreadable_body"
    assert seen.requests == []


def test_non_utf8_body_reaches_the_handler_as_bytes(worker: Entrypoint, seen: Seen) -> None:
    fetch(worker, FakeRequest("POST", f"{ORIGIN}/echo/x", body=b"\xff\xfe\x00"))
    assert seen.requests[0].body == b"\xff\xfe\x00"
    assert seen.requests[0].text == "\ufffd\ufffd\x00"


def test_non_utf8_body_to_a_json_handler_is_400(worker: Entrypoint) -> None:
    request = FakeRequest(
        "POST", f"{ORIGIN}/json", [("content-type", "application/json")], body=b"\xff{"
    )
    response = fetch(worker, request)
    assert response.status == 400
    assert response.json()["code"] == "invalid_json"


def test_json_body(worker: Entrypoint) -> None:
    request = FakeRequest("POST", f"{ORIGIN}/json", body=b'{"n": [1, 2]}')
    assert fetch(worker, request).json() == {"got": {"n": [1, 2]}}


def test_response_headers_are_appended_one_by_one(worker: Entrypoint) -> None:
    response = fetch(worker, FakeRequest("GET", f"{ORIGIN}/cookies"))
    assert response.status == 200
    cookies = response.headers.getSetCookie()
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]
    assert response.headers.get("x-a") == "1, 2"
    assert response.body == b"hi"


def test_binary_response_body_is_bytes(worker: Entrypoint) -> None:
    response = fetch(worker, FakeRequest("POST", f"{ORIGIN}/echo/x", body=bytes(range(256))))
    assert response.body == bytes(range(256))
    assert response.headers.get("content-type") == "application/octet-stream"
    assert response.headers.get("x-method") == "POST"


def test_empty_and_null_body_statuses_send_no_body(worker: Entrypoint) -> None:
    assert fetch(worker, FakeRequest("GET", f"{ORIGIN}/no-content")).body is None
    head = fetch(worker, FakeRequest("HEAD", f"{ORIGIN}/items/1"))
    assert head.status == 200
    assert head.body is None
    assert head.headers.get("content-length") == "8"


def test_response_the_runtime_rejects_becomes_500(worker: Entrypoint) -> None:
    response = fetch(worker, FakeRequest("GET", f"{ORIGIN}/bad-header", [("cf-ray", "r-1")]))
    assert response.status == 500
    assert response.json()["code"] == "internal_error"
    assert response.json()["invocation_id"] == "r-1"


def test_to_native_keeps_repeated_headers() -> None:
    response = HttpResponse.text("ok", 201).with_header("vary", "a").with_header("vary", "b")
    native = to_native(response, FakeRuntime())
    assert isinstance(native, FakeResponse)
    assert native.status == 201
    assert native.headers.get("vary") == "a, b"
    assert native.body == b"ok"


def test_fetch_rejects_what_is_not_a_request(worker: Entrypoint) -> None:
    with pytest.raises(UnsupportedEventError):
        asyncio.run(worker.fetch({"url": "https://example.com"}))


def test_module_level_on_fetch(app: App, seen: Seen) -> None:
    on_fetch = handlers(app, runtime=FakeRuntime()).on_fetch
    env = {"DB": "d1"}
    request = FakeRequest("GET", f"{ORIGIN}/echo/legacy")
    response = asyncio.run(on_fetch(request, env, FakeExecutionContext()))
    assert response.status == 200
    assert seen.contexts[0].raw.env is env


def test_fake_headers_behave_like_fetch_headers() -> None:
    headers = FakeHeaders([("B", " 2 "), ("a", "1"), ("b", "3")])
    assert headers.entries() == [("a", "1"), ("b", "2, 3")]
    with pytest.raises(TypeError):
        headers.append("x", "a\r\nb")


@pytest.mark.parametrize("path", ["/echo/a%2Fb", "/echo/%zz", "/echo/%", "/echo/%2e%2e"])
def test_paths_the_rule_refuses_are_400(worker: Entrypoint, seen: Seen, path: str) -> None:
    response = fetch(worker, FakeRequest("GET", ORIGIN + path))
    assert response.status == 400
    assert response.json()["code"] == "invalid_path"
    assert seen.requests == []
