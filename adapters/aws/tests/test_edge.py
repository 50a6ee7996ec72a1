"""Lambda@Edge: viewer and origin requests and responses, answered in CloudFront's form."""

from __future__ import annotations

import base64
import json
import logging
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


def forwarding(answer: HttpResponse) -> Any:
    app = App("edge")

    @app.route("/{rest:path}", methods=["GET", "POST"])
    def anything(rest: str) -> HttpResponse:
        return answer

    return polyserve_aws.handler(app)


def test_forward_rewrites_the_request_on_its_way(lambda_context: FakeLambdaContext) -> None:
    raw = load("edge-viewer-request.json")
    original = json.loads(json.dumps(raw))
    answer = edge.forward(
        path="/spa/index.html",
        query={"lang": "fr CA", "page": "2"},
        headers={"X-Origin-Verify": "s3cret"},
        remove=["Cookie"],
    )
    out = forwarding(answer)(raw, lambda_context)

    assert out["uri"] == "/spa/index.html"
    assert out["querystring"] == "lang=fr+CA&page=2"
    assert out["headers"]["x-origin-verify"] == [{"key": "X-Origin-Verify", "value": "s3cret"}]
    assert "cookie" not in out["headers"]
    assert out["headers"]["host"] == original["Records"][0]["cf"]["request"]["headers"]["host"]
    assert out["method"] == "GET"
    assert out["clientIp"] == original["Records"][0]["cf"]["request"]["clientIp"]
    assert raw == original  # the event itself is left as it came


def test_forward_percent_encodes_the_path_and_keeps_a_query_as_sent(
    lambda_context: FakeLambdaContext,
) -> None:
    out = forwarding(edge.forward(path="/pets/café 100%", query="?a=1&a=2"))(
        load("edge-viewer-request.json"), lambda_context
    )
    assert out["uri"] == "/pets/caf%C3%A9%20100%25"
    assert out["querystring"] == "a=1&a=2"
    out = forwarding(edge.forward(query=""))(load("edge-viewer-request.json"), lambda_context)
    assert out["querystring"] == ""
    assert out["uri"] == "/pets/caf%C3%A9"  # as it came


def test_forward_sets_headers_on_the_origins_response(lambda_context: FakeLambdaContext) -> None:
    raw = load("edge-origin-response.json")
    hsts = "max-age=63072000; includeSubDomains"
    out = forwarding(edge.forward(headers={"Strict-Transport-Security": hsts}, remove=["server"]))(
        raw, lambda_context
    )
    assert out["status"] == "200"
    assert out["headers"]["strict-transport-security"] == [
        {"key": "Strict-Transport-Security", "value": hsts}
    ]
    assert "server" not in out["headers"]
    assert (
        out["headers"]["content-type"]
        == raw["Records"][0]["cf"]["response"]["headers"]["content-type"]
    )


def test_headers_a_middleware_adds_are_not_taken_for_changes(
    lambda_context: FakeLambdaContext,
) -> None:
    app = App("edge")

    @app.middleware
    def stamp(call: Any, request: HttpRequest, ctx: Any) -> HttpResponse:
        response: HttpResponse = call(request)
        return response.with_header("x-frame-options", "DENY")

    @app.get("/{rest:path}")
    def everything(rest: str) -> HttpResponse:
        return edge.forward(headers={"x-origin-verify": "s3cret"})

    raw = load("edge-viewer-request.json")
    out = polyserve_aws.handler(app)(raw, lambda_context)
    assert "x-frame-options" not in out["headers"]
    assert out["headers"]["x-origin-verify"] == [{"key": "X-Origin-Verify", "value": "s3cret"}]


@pytest.mark.parametrize(
    ("event", "answer", "named"),
    [
        ("edge-viewer-request.json", edge.forward(headers={"Host": "evil.example"}), "host"),
        (
            "edge-origin-request-body.json",
            edge.forward(remove=["content-length"]),
            "content-length",
        ),
        ("edge-viewer-request.json", edge.forward(headers={"X-Cache": "Hit"}), "x-cache"),
        ("edge-viewer-request.json", edge.forward(headers={"X-Amz-Cf-Id": "x"}), "x-amz-cf-id"),
        ("edge-origin-response.json", edge.forward(path="/elsewhere"), "path or query"),
    ],
)
def test_a_forward_cloudfront_would_refuse_is_a_500_that_names_it(
    event: str,
    answer: HttpResponse,
    named: str,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="polyserve"):
        out = forwarding(answer)(load(event), lambda_context)
    assert out["status"] == "500"
    assert json.loads(out["body"])["code"] == "internal_error"
    assert "Lambda@Edge forward refused" in caplog.text
    assert named in caplog.text


def test_forward_refuses_what_no_request_can_carry() -> None:
    from polyserve import InvalidHeaderError

    with pytest.raises(InvalidHeaderError):
        edge.forward(headers={"x-a": "a\r\nSet-Cookie: x=1"})
    with pytest.raises(ValueError, match="path"):
        edge.forward(path="pets")
    with pytest.raises(ValueError, match="path"):
        edge.forward(path="/a\r\nb")
    with pytest.raises(ValueError, match="query"):
        edge.forward(query="a=\n")
    with pytest.raises(ValueError, match="both"):
        edge.forward(headers={"X-A": "1"}, remove=["x-a"])


def test_a_generated_response_leaves_out_what_cloudfront_refuses(
    lambda_context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    # A mounted ASGI app sets Content-Length; CloudFront frames the body itself and
    # refuses an origin request's answer that carries it.
    answer = HttpResponse.text("hi", headers={"Content-Length": "2", "Connection": "close"})
    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = forwarding(answer)(load("edge-origin-request-body.json"), lambda_context)
    assert out["status"] == "200"
    assert out["body"] == "hi"
    assert "content-length" not in out["headers"]
    assert "connection" not in out["headers"]
    assert "content-type" in out["headers"]
    assert "connection" in caplog.text
    assert "content-length" not in caplog.text  # framing is dropped without a word


def test_forward_takes_any_printable_path(lambda_context: FakeLambdaContext) -> None:
    # A zero-width space is not "printable" to Python, but it is no control character.
    out = forwarding(edge.forward(path="/a\u200bb"))(
        load("edge-viewer-request.json"), lambda_context
    )
    assert out["uri"] == "/a%E2%80%8Bb"
