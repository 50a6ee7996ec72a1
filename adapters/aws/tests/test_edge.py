"""Lambda@Edge: viewer and origin requests and responses, answered in CloudFront's form."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, HttpRequest, HttpResponse
from polyserve_aws import edge


def recording(seen: list[HttpRequest], response: HttpResponse) -> App:
    app = App("edge")

    @app.route("/{rest:path}", methods=["GET", "POST"])
    def anything(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return response

    return app


def test_a_viewer_request_gets_a_generated_response(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    response = HttpResponse.json({"ok": True}, status=403).with_header("x-kennel", "closed")
    raw = load("edge-viewer-request.json")
    out = polyserve_aws.handler(recording(seen, response))(raw, lambda_context)

    (request,) = seen
    assert request.method == "GET"
    assert request.path == "/pets/café"
    assert request.query.multi_items() == [("breed", "beagle"), ("page", "2")]
    assert request.headers.get_all("cookie") == ["session=abc123", "theme=dark"]
    assert request.cookies == {"session": "abc123", "theme": "dark"}
    assert request.headers["accept-language"] == "fr-CA,fr;q=0.9"
    assert request.client == "198.51.100.23"
    assert request.request_id == raw["Records"][0]["cf"]["config"]["requestId"]
    assert request.body == b""
    assert request.raw is raw

    assert out["status"] == "403"
    assert out["statusDescription"] == "Forbidden"
    assert out["headers"]["x-kennel"] == [{"key": "X-Kennel", "value": "closed"}]
    assert out["headers"]["content-type"] == [{"key": "Content-Type", "value": "application/json"}]
    assert out["bodyEncoding"] == "text"
    assert json.loads(out["body"]) == {"ok": True}


def test_an_origin_request_with_its_body(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    binary = HttpResponse.binary(b"\x00\x01")
    out = polyserve_aws.handler(recording(seen, binary))(
        load("edge-origin-request-body.json"), lambda_context
    )
    assert seen[0].method == "POST"
    assert seen[0].json() == {"pet": "bella"}
    assert seen[0].client == "2001:db8::7"
    assert out["bodyEncoding"] == "base64"
    assert base64.b64decode(out["body"]) == b"\x00\x01"


def test_a_text_body_and_repeated_response_headers(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    raw = load("edge-origin-request-body.json")
    raw["Records"][0]["cf"]["request"]["body"].update(encoding="text", data="plain")
    response = HttpResponse.text("hi").set_cookie("a", "1").set_cookie("b", "2")
    out = polyserve_aws.handler(recording(seen, response))(raw, lambda_context)
    assert seen[0].body == b"plain"
    assert [c["value"].split(";")[0] for c in out["headers"]["set-cookie"]] == ["a=1", "b=2"]
    assert out["headers"]["set-cookie"][0]["key"] == "Set-Cookie"


def test_an_origin_response_is_replaced(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    app = App("edge")

    @app.get("/pets/7")
    def secure(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        origin = request.raw["Records"][0]["cf"]["response"]
        return HttpResponse.text("from the edge", status=int(origin["status"])).with_header(
            "strict-transport-security", "max-age=63072000"
        )

    out = polyserve_aws.handler(app)(load("edge-origin-response.json"), lambda_context)
    assert seen[0].path == "/pets/7"
    assert out["status"] == "200"
    assert out["body"] == "from the edge"
    assert out["headers"]["strict-transport-security"][0]["key"] == "Strict-Transport-Security"


def test_a_viewer_response_never_carries_a_body(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    response = HttpResponse.text("ignored").with_header("cache-control", "no-store")
    out = polyserve_aws.handler(recording(seen, response))(
        load("edge-viewer-response.json"), lambda_context
    )
    assert "body" not in out
    assert "bodyEncoding" not in out
    assert out["headers"]["cache-control"] == [{"key": "Cache-Control", "value": "no-store"}]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"config": {"eventType": "origin-nonsense"}}, 400, "malformed_event"),
        ({"config": None}, 400, "malformed_event"),
        (
            {"request": {"method": "GET", "uri": "/x", "headers": {"host": "h"}}},
            400,
            "malformed_event",
        ),
        ({"request": {"method": "GET", "uri": "/x", "querystring": 5}}, 400, "malformed_event"),
        ({"request": {"method": "GET", "uri": "/%ZZ"}}, 400, "invalid_path"),
        (
            {
                "request": {
                    "method": "POST",
                    "uri": "/x",
                    "body": {"data": "!", "encoding": "base64"},
                }
            },
            400,
            "invalid_base64",
        ),
        (
            {"request": {"method": "POST", "uri": "/x", "body": {"inputTruncated": True}}},
            413,
            "payload_too_large",
        ),
    ],
)
def test_malformed_edge_events_are_answered_not_raised(
    lambda_context: FakeLambdaContext, change: dict[str, Any], status: int, code: str
) -> None:
    seen: list[HttpRequest] = []
    raw = load("edge-viewer-request.json")
    cf = raw["Records"][0]["cf"]
    for key, value in change.items():
        if key == "config" and isinstance(value, dict):
            cf["config"].update(value)
        else:
            cf[key] = value
    out = polyserve_aws.handler(recording(seen, HttpResponse.text("x")))(raw, lambda_context)
    assert seen == []
    assert out["status"] == str(status)
    assert json.loads(out["body"])["code"] == code


def test_forward_hands_cloudfront_back_what_it_had(lambda_context: FakeLambdaContext) -> None:
    app = App("edge")

    @app.get("/api/{rest:path}")
    def api(rest: str) -> HttpResponse:
        return HttpResponse.text(f"edge answered {rest}")

    @app.get("/{rest:path}")
    def everything_else(rest: str) -> HttpResponse:
        return edge.forward()

    handler = polyserve_aws.handler(app)
    raw = load("edge-viewer-request.json")
    assert handler(raw, lambda_context) == raw["Records"][0]["cf"]["request"]
    response_event = load("edge-origin-response.json")
    assert handler(response_event, lambda_context) == response_event["Records"][0]["cf"]["response"]

    raw["Records"][0]["cf"]["request"]["uri"] = "/api/pets"
    assert handler(raw, lambda_context)["body"] == "edge answered pets"
    assert edge.forward().status == 204  # elsewhere: an empty answer
