"""API Gateway REST (payload 1.0), HTTP API (payload 2.0) and Function URL events."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Context, Headers, HttpRequest, HttpResponse, QueryParams
from polyserve_aws import _apigateway

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


def test_rest_request_prefers_multi_value_maps(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("apigw-rest-get.json")

    response = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert response["statusCode"] == 200
    request: HttpRequest = recorder.last
    assert request.method == "GET"
    assert request.path == "/pets/7/café"
    assert request.query == QueryParams([("species", "cat"), ("tag", "a"), ("tag", "b")])
    assert request.headers.get_all("x-tag") == ["first", "second"]
    assert request.cookies == {"session": "abc", "theme": "dark"}
    assert request.body == b""
    assert request.client == "198.51.100.40"
    assert request.request_id == "4b3f0c2e-9d1a-4e55-8c61-0f5e2a7d9b10"
    assert request.raw is raw


def test_rest_request_falls_back_to_single_value_maps(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("apigw-rest-get.json")
    raw["multiValueHeaders"] = None
    del raw["multiValueQueryStringParameters"]

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    request: HttpRequest = recorder.last
    assert request.headers.get_all("x-tag") == ["second"]
    assert request.query == QueryParams([("species", "cat"), ("tag", "b")])


def test_rest_base64_body_is_decoded(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    polyserve_aws.handler(recorder.app)(load("apigw-rest-post-binary.json"), lambda_context)

    assert recorder.last.body == bytes([0, 1, 2, 0xFD, 0xFE, 0xFF])


def test_http_api_request(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    raw = load("apigw-http-post.json")

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    request: HttpRequest = recorder.last
    assert request.method == "POST"
    assert request.path == "/pets/new arrivals"
    assert request.query.get_all("tag") == ["a", "b&c"]
    assert request.query["q"] == "café au lait"
    assert request.query["notify"] == "yes"
    # AWS joins repeated headers with commas before the event is built.
    assert request.headers.get_all("x-tag") == ["first,second"]
    assert request.headers.get_all("cookie") == ["session=abc; theme=dark"]
    assert request.cookies == {"session": "abc", "theme": "dark"}
    assert request.json() == {"name": "Tom", "species": "cat"}
    assert request.client == "192.0.2.10"
    assert request.request_id == "Xk2v1hQZIAMEbxw="


def test_function_url_request(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    raw = load("function-url-get.json")

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    request: HttpRequest = recorder.last
    assert (request.method, request.path) == ("GET", "/health")
    assert request.query == QueryParams([("verbose", "")])
    assert request.client == "203.0.113.77"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("apigw-rest-get.json", "rest"),
        ("apigw-http-post.json", "http"),
        ("function-url-get.json", "function_url"),
    ],
)
def test_kind_tells_the_services_apart(name: str, kind: str) -> None:
    raw = load(name)
    assert _apigateway.matches(raw)
    assert _apigateway.kind(raw) == kind


def test_authorizer_events_are_not_requests() -> None:
    v1 = load("apigw-rest-get.json") | {"type": "REQUEST", "methodArn": "arn:aws:execute-api:x"}
    v2 = load("apigw-http-post.json") | {"type": "REQUEST", "routeArn": "arn:aws:execute-api:x"}
    assert not _apigateway.matches(v1)
    assert not _apigateway.matches(v2)


def _responding(response: HttpResponse) -> App:
    app = App("responder")

    @app.route("/{rest:path}", ("GET", "POST"))
    def respond(rest: str) -> HttpResponse:
        return response

    return app


COOKIES = HttpResponse.text("hi", headers={"x-one": "1"}).with_header("vary", "accept")
COOKIES = COOKIES.with_header("vary", "origin").set_cookie("a", "1").set_cookie("b", "2")


def test_rest_response_puts_repeated_headers_in_multi_value_headers(
    lambda_context: FakeLambdaContext,
) -> None:
    out = polyserve_aws.handler(_responding(COOKIES))(load("apigw-rest-get.json"), lambda_context)

    assert out["statusCode"] == 200
    assert out["headers"] == {"x-one": "1", "content-type": "text/plain; charset=utf-8"}
    assert out["multiValueHeaders"]["vary"] == ["accept", "origin"]
    cookies = out["multiValueHeaders"]["set-cookie"]
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]
    assert out["body"] == "hi"
    assert out["isBase64Encoded"] is False


def test_http_api_response_joins_headers_and_lists_cookies(
    lambda_context: FakeLambdaContext,
) -> None:
    out = polyserve_aws.handler(_responding(COOKIES))(load("apigw-http-post.json"), lambda_context)

    assert out["headers"]["vary"] == "accept, origin"
    assert "set-cookie" not in out["headers"]
    assert [c.split(";")[0] for c in out["cookies"]] == ["a=1", "b=2"]
    assert out["body"] == "hi"


def test_http_api_responses_sharing_headers_each_get_their_own_copies(
    lambda_context: FakeLambdaContext,
) -> None:
    # Responses with the same Headers render them once; what a response hands back is
    # still its own, and other headers render afresh.
    handler = polyserve_aws.handler(_responding(COOKIES))
    first = handler(load("apigw-http-post.json"), lambda_context)
    first["headers"]["vary"] = "changed"
    first["cookies"].append("c=3")
    second = handler(load("apigw-http-post.json"), lambda_context)
    assert second["headers"]["vary"] == "accept, origin"
    assert [c.split(";")[0] for c in second["cookies"]] == ["a=1", "b=2"]
    other = polyserve_aws.handler(_responding(HttpResponse.text("x", headers={"vary": "a"})))
    third = other(load("apigw-http-post.json"), lambda_context)
    assert third["headers"]["vary"] == "a"
    assert "cookies" not in third


@pytest.mark.parametrize("name", ["apigw-rest-get.json", "apigw-http-post.json"])
def test_binary_response_is_base64(name: str, lambda_context: FakeLambdaContext) -> None:
    payload = bytes(range(256))
    out = polyserve_aws.handler(_responding(HttpResponse.binary(payload)))(
        load(name), lambda_context
    )

    assert out["isBase64Encoded"] is True
    assert base64.b64decode(out["body"]) == payload
    assert out["headers"]["content-type"] == "application/octet-stream"


def _problem(out: dict[str, Any]) -> dict[str, Any]:
    assert out["headers"]["content-type"] == "application/problem+json"
    body = json.loads(out["body"])
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    ("name", "change", "code"),
    [
        ("apigw-rest-get.json", {"body": "not base64!", "isBase64Encoded": True}, "invalid_base64"),
        ("apigw-rest-get.json", {"httpMethod": 7}, "malformed_event"),
        ("apigw-rest-get.json", {"path": None}, "malformed_event"),
        ("apigw-rest-get.json", {"multiValueHeaders": None, "headers": ["x"]}, "malformed_event"),
        ("apigw-http-post.json", {"requestContext": {"requestId": "r"}}, "malformed_event"),
        ("apigw-http-post.json", {"cookies": "a=1"}, "malformed_event"),
        ("apigw-http-post.json", {"body": {"json": "object"}}, "malformed_event"),
        ("function-url-get.json", {"rawPath": None}, "malformed_event"),
    ],
)
def test_malformed_event_gets_a_400_problem_in_its_own_format(
    recorder: Recorder,
    lambda_context: FakeLambdaContext,
    name: str,
    change: dict[str, Any],
    code: str,
) -> None:
    raw = load(name) | change

    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert out["statusCode"] == 400
    assert ("multiValueHeaders" in out) is (name == "apigw-rest-get.json")
    body = _problem(out)
    assert body["code"] == code
    assert body["status"] == 400
    assert body["invocation_id"] == lambda_context.aws_request_id
    assert recorder.seen == []


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("apigw-rest-get.json", {"multiValueHeaders": {"x": "not a list"}}),
        ("apigw-http-post.json", {"headers": {"x": 1}}),
    ],
)
def test_malformed_header_values_are_a_400_when_the_handler_reads_them(
    lambda_context: FakeLambdaContext, name: str, change: dict[str, Any]
) -> None:
    app = App("headers")

    @app.route("/{rest:path}", ("GET", "POST"))
    def any_path(request: HttpRequest) -> str:
        return request.headers.get("x") or ""

    out = polyserve_aws.handler(app)(load(name) | change, lambda_context)

    assert out["statusCode"] == 400
    assert _problem(out)["code"] == "malformed_event"


def test_handler_errors_become_problem_responses(lambda_context: FakeLambdaContext) -> None:
    app = App("empty")

    out = polyserve_aws.handler(app)(load("apigw-http-post.json"), lambda_context)

    assert out["statusCode"] == 404
    assert _problem(out)["code"] == "not_found"


def test_head_request_answers_without_body(lambda_context: FakeLambdaContext) -> None:
    app = _responding(HttpResponse.text("hello"))
    raw = load("apigw-rest-get.json") | {"httpMethod": "HEAD"}

    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert out["statusCode"] == 200
    assert out["body"] == ""
    assert out["headers"]["content-length"] == "5"


def test_to_native_keeps_header_order_of_values() -> None:
    response = HttpResponse(200, Headers([("x-a", "1"), ("x-b", "2"), ("x-a", "3")]), b"")

    v2 = _apigateway.to_native(response, load("apigw-http-post.json"), Context("aws"))
    v1 = _apigateway.to_native(response, load("apigw-rest-get.json"), Context("aws"))

    assert v2["headers"] == {"x-a": "1, 3", "x-b": "2"}
    assert v1["headers"] == {"x-b": "2"}
    assert v1["multiValueHeaders"] == {"x-a": ["1", "3"]}


def _with_path(name: str, path: str) -> dict[str, Any]:
    raw = load(name)
    raw["rawPath" if "rawPath" in raw else "path"] = path
    return raw


@pytest.mark.parametrize("name", ["apigw-rest-get.json", "function-url-get.json"])
@pytest.mark.parametrize(
    ("raw_path", "decoded"),
    [
        ("/a/caf%C3%A9%20x", "/a/café x"),
        ("/a/100%25", "/a/100%"),
        ("/a/%2541", "/a/%41"),  # decoded once: a "%" the client sent stays one
    ],
)
def test_rest_and_function_url_paths_are_decoded_once(
    recorder: Recorder,
    lambda_context: FakeLambdaContext,
    name: str,
    raw_path: str,
    decoded: str,
) -> None:
    polyserve_aws.handler(recorder.app)(_with_path(name, raw_path), lambda_context)
    assert recorder.last.path == decoded


@pytest.mark.parametrize("raw_path", ["/pets%2F1", "/a/%FF%FE", "/a/%zz", "/a/%", "/a/%2e%2e"])
@pytest.mark.parametrize("name", ["apigw-rest-get.json", "function-url-get.json"])
def test_rest_and_function_url_paths_the_rule_refuses_are_400(
    recorder: Recorder, lambda_context: FakeLambdaContext, name: str, raw_path: str
) -> None:
    out = polyserve_aws.handler(recorder.app)(_with_path(name, raw_path), lambda_context)
    assert out["statusCode"] == 400
    assert _problem(out)["code"] == "invalid_path"
    assert recorder.seen == []


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        # An HTTP API decodes the path itself: what arrives is taken as it is, so a
        # "%41" the client sent as "%2541" stays "%41", and a lone "%" is no error.
        (_with_path("apigw-http-post.json", "/a/%41 100%"), "/a/%41 100%"),
        (_with_path("apigw-rest-get.json", "/a/%41 100%") | {"version": "1.0"}, "/a/%41 100%"),
    ],
    ids=["payload 2.0", "payload 1.0"],
)
def test_http_api_paths_are_not_decoded_a_second_time(
    recorder: Recorder, lambda_context: FakeLambdaContext, raw: dict[str, Any], path: str
) -> None:
    polyserve_aws.handler(recorder.app)(raw, lambda_context)
    assert recorder.last.path == path
