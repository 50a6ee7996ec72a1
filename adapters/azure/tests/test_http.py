"""The HTTP trigger: real ``HttpRequest`` in, the request a handler sees, ``HttpResponse`` out."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests.support import call, functions, http_request, load_native
from azure.functions.http import HttpResponseConverter

import polyserve_azure
from polyserve import App, HttpError, HttpRequest, HttpResponse, QueryParams
from polyserve_testkit.recorder import Recorder

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function


def _http(app: App, **kwargs: Any) -> Function:
    return functions(polyserve_azure.function_app(app, **kwargs))["http"]


def _catch_all() -> Recorder:
    recorder = Recorder(App("catch-all"))

    def record(request: HttpRequest) -> str:
        recorder.seen.append(request)
        return "ok"

    recorder.app.add_route("/{rest:path}", record, ["GET"])
    return recorder


def test_a_get_request_as_the_handler_sees_it(fns: dict[str, Function], recorder: Recorder) -> None:
    response = call(fns["http"], load_native("http-get-query.json"), invocation_id="inv-7")
    request = recorder.last
    assert isinstance(request, HttpRequest)
    assert (request.method, request.path) == ("GET", "/pets/search all")
    assert request.query == QueryParams([("species", "dog"), ("species", "cat"), ("q", "a+b")])
    assert request.headers.get("accept") == "application/json, text/plain"
    assert request.cookies == {"session": "abc123", "theme": "dark"}
    assert request.client == "203.0.113.7"
    assert request.request_id == "inv-7"
    assert request.body == b""
    assert isinstance(request.raw, func.HttpRequest)
    assert (response.status_code, response.get_body()) == (200, b"ok")


def test_a_binary_body_arrives_intact(fns: dict[str, Function], recorder: Recorder) -> None:
    call(fns["http"], load_native("http-post-binary.json"))
    assert recorder.last.method == "POST"
    assert recorder.last.body == b"\x89PNG\r\n\x1a\n"
    assert recorder.last.client is None


@pytest.mark.parametrize(
    ("prefix", "url", "path"),
    [
        ("api", "https://h/api/pets/1", "/pets/1"),
        ("api", "https://h/API/pets/1", "/pets/1"),
        ("api", "https://h/api", "/"),
        ("api", "https://h/api/", "/"),
        ("api", "https://h/apix/pets", "/apix/pets"),
        ("", "https://h/api/pets", "/api/pets"),
        ("/v1/", "https://h/v1/pets/%F0%9F%90%88", "/pets/\U0001f408"),
        ("api", "https://h/api/a%20b%3Fc", "/a b?c"),
    ],
)
def test_the_route_prefix_is_removed_and_the_path_decoded(prefix: str, url: str, path: str) -> None:
    recorder = _catch_all()
    call(_http(recorder.app, route_prefix=prefix), http_request("GET", url))
    assert recorder.last.path == path


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:52344", "203.0.113.7"),
        ("10.0.0.1, 198.51.100.2:443", "198.51.100.2"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:8443", "2001:db8::1"),
        ("", None),
    ],
)
def test_the_client_is_the_address_azure_appended(forwarded: str, client: str | None) -> None:
    recorder = _catch_all()
    call(
        _http(recorder.app),
        http_request("GET", "https://h/api/", headers={"x-forwarded-for": forwarded}),
    )
    assert recorder.last.client == client


def _answering(response: HttpResponse) -> Function:
    app = App("answers")
    app.get("/answer")(lambda: response)
    return _http(app)


def test_the_response_keeps_status_body_and_type() -> None:
    native = call(
        _answering(HttpResponse.json({"a": 1}, 201, {"location": "/a/1"})),
        http_request("GET", "https://h/api/answer"),
    )
    assert isinstance(native, func.HttpResponse)
    assert native.status_code == 201
    assert json.loads(native.get_body()) == {"a": 1}
    assert native.mimetype == "application/json"
    assert native.headers["location"] == "/a/1"


def test_every_set_cookie_reaches_the_host_and_other_repeats_are_joined() -> None:
    response = (
        HttpResponse.text("hi")
        .with_header("vary", "origin")
        .with_header("vary", "accept")
        .set_cookie("a", "1")
        .set_cookie("b", "2", max_age=60)
    )
    native = call(_answering(response), http_request("GET", "https://h/api/answer"))
    assert native.headers.get_all("Set-Cookie") == response.headers.get_all("set-cookie")
    assert native.headers.get_all("vary") == ["origin, accept"]
    out = HttpResponseConverter.encode(native, expected_type=None).value
    cookies = [m.OutputString() for c in out["cookies"] for m in c.values()]
    assert cookies == response.headers.get_all("set-cookie")
    assert out["headers"]["vary"].value == "origin, accept"
    assert out["headers"]["content-type"].value == "text/plain; charset=utf-8"


def test_a_binary_response_body_is_bytes() -> None:
    data = bytes(range(256))
    native = call(
        _answering(HttpResponse.binary(data)), http_request("GET", "https://h/api/answer")
    )
    assert native.get_body() == data
    assert native.headers["content-type"] == "application/octet-stream"


def test_head_answers_without_a_body() -> None:
    native = call(
        _answering(HttpResponse.text("hello")), http_request("HEAD", "https://h/api/answer")
    )
    assert native.get_body() == b""
    assert native.headers["content-length"] == "5"


def test_errors_become_problem_responses_with_the_invocation_id() -> None:
    app = App("errors")

    @app.get("/teapot")
    def teapot() -> None:
        raise HttpError(418, "teapot", "short and stout")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret")

    fn = _http(app)
    native = call(fn, http_request("GET", "https://h/api/teapot"), invocation_id="inv-9")
    assert native.status_code == 418
    assert json.loads(native.get_body())["code"] == "teapot"
    native = call(fn, http_request("GET", "https://h/api/boom"), invocation_id="inv-9")
    body = json.loads(native.get_body())
    assert native.status_code == 500
    assert (body["code"], body["invocation_id"]) == ("internal_error", "inv-9")
    assert "secret" not in native.get_body().decode()
    native = call(fn, http_request("GET", "https://h/api/nowhere"))
    assert native.status_code == 404


@pytest.mark.parametrize(
    "native",
    [
        # Mistyped on purpose (hence the type ignores): each must fail with a typed error.
        func.HttpRequest("GET", None, body=b""),  # type: ignore[arg-type]
        func.HttpRequest("", "https://h/api/x", body=b""),
        func.HttpRequest("GET", "https://h/api/x", body=12),  # type: ignore[arg-type]
        func.HttpRequest("GET", "https://h/api/x", headers={"x-n": 1}, body=b""),  # type: ignore[dict-item]
        func.HttpRequest("GET", "https://[::1/api/x", body=b""),
        func.QueueMessage(id="m", body=b"not a request"),
    ],
    ids=["no-url", "no-method", "int-body", "int-header", "bad-url", "queue-message"],
)
def test_an_unreadable_request_is_a_400_problem(native: Any) -> None:
    app = App("bad")
    app.get("/x")(lambda: "x")
    response = call(_http(app), native, invocation_id="inv-bad")
    body = json.loads(response.get_body())
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert (body["code"], body["invocation_id"]) == ("malformed_event", "inv-bad")


@pytest.mark.parametrize(
    "url", ["https://h/api/pets%2F1", "https://h/api/files/%FF%FE", "https://h/api/a/%zz"]
)
def test_a_path_the_rule_refuses_is_a_400(url: str) -> None:
    recorder = _catch_all()
    response = call(_http(recorder.app, route_prefix="api"), http_request("GET", url))
    assert response.status_code == 400
    assert json.loads(response.get_body())["code"] == "invalid_path"
    assert recorder.seen == []
