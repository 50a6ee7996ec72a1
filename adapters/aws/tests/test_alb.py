"""Application Load Balancer events, single-value and multi-value modes."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, HttpRequest, HttpResponse, QueryParams
from polyserve_aws import _alb

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


def test_single_value_request_decodes_path_and_query(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("alb-single.json")

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    request: HttpRequest = recorder.last
    assert request.method == "GET"
    assert request.path == "/pets/search results"
    assert request.query == QueryParams(
        [("name", "café"), ("q", "tom jerry"), ("filter[age]", "3")]
    )
    assert request.headers["accept"] == "application/json"
    # The last X-Forwarded-For entry is the address the load balancer saw.
    assert request.client == "198.51.100.8"
    assert request.request_id == lambda_context.aws_request_id
    assert request.body == b""


def test_multi_value_request(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    polyserve_aws.handler(recorder.app)(load("alb-multi.json"), lambda_context)

    request: HttpRequest = recorder.last
    assert request.method == "POST"
    assert request.query.get_all("tag") == ["a", "b c"]
    assert request.headers.get_all("x-tag") == ["one", "two"]
    assert request.body == b"hello world"
    assert request.client == "198.51.100.9"


def test_no_forwarded_for_means_no_client(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("alb-single.json")
    del raw["headers"]["x-forwarded-for"]

    polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert recorder.last.client is None


def _app(response: HttpResponse) -> App:
    app = App("alb")
    app.add_route("/{rest:path}", lambda rest: response, ("GET", "POST"))
    return app


TWO_COOKIES = (
    HttpResponse.json({"ok": True}, 201)
    .with_header("vary", "accept")
    .with_header("vary", "origin")
    .set_cookie("a", "1")
    .set_cookie("b", "2")
)


def test_multi_value_mode_answers_with_multi_value_headers(
    lambda_context: FakeLambdaContext,
) -> None:
    out = polyserve_aws.handler(_app(TWO_COOKIES))(load("alb-multi.json"), lambda_context)

    assert out["statusCode"] == 201
    assert out["statusDescription"] == "201 Created"
    assert "headers" not in out
    assert out["multiValueHeaders"]["vary"] == ["accept", "origin"]
    assert [c.split(";")[0] for c in out["multiValueHeaders"]["set-cookie"]] == ["a=1", "b=2"]
    assert json.loads(out["body"]) == {"ok": True}
    assert out["isBase64Encoded"] is False


def test_single_value_mode_joins_headers_and_keeps_the_last_cookie(
    lambda_context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = polyserve_aws.handler(_app(TWO_COOKIES))(load("alb-single.json"), lambda_context)

    assert "multiValueHeaders" not in out
    assert out["headers"]["vary"] == "accept, origin"
    assert out["headers"]["set-cookie"].startswith("b=2")
    assert "Set-Cookie" in caplog.text


def test_binary_response_and_unknown_status(lambda_context: FakeLambdaContext) -> None:
    response = HttpResponse.binary(b"\x89PNG\x00", 299)

    out = polyserve_aws.handler(_app(response))(load("alb-single.json"), lambda_context)

    assert out["statusDescription"] == "299 Unknown"
    assert out["isBase64Encoded"] is True
    assert out["body"] == "iVBORwA="


@pytest.mark.parametrize(
    "change",
    [
        {"body": "###", "isBase64Encoded": True},
        {"httpMethod": None},
        {"queryStringParameters": {"a": ["list"]}},
        {"multiValueHeaders": {"a": "not a list"}},
    ],
)
def test_malformed_event_gets_a_400_in_the_same_mode(
    recorder: Recorder, lambda_context: FakeLambdaContext, change: dict[str, object]
) -> None:
    raw = load("alb-single.json") | change

    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert out["statusCode"] == 400
    assert out["statusDescription"] == "400 Bad Request"
    headers = out.get("headers") or {k: v[0] for k, v in out["multiValueHeaders"].items()}
    assert ("multiValueHeaders" in out) is ("multiValueHeaders" in change)
    assert headers["content-type"] == "application/problem+json"
    assert recorder.seen == []


def test_matches_only_elb_events() -> None:
    assert _alb.matches(load("alb-single.json"))
    assert not _alb.matches(load("apigw-rest-get.json"))
    assert _alb.is_multi_value(load("alb-multi.json"))
    assert not _alb.is_multi_value(load("alb-single.json"))


@pytest.mark.parametrize("name", ["alb-single.json", "alb-multi.json"])
@pytest.mark.parametrize("path", ["/pets%2F1", "/pets/%FF%FE", "/pets/%zz"])
def test_paths_the_rule_refuses_are_400(
    recorder: Recorder, lambda_context: FakeLambdaContext, name: str, path: str
) -> None:
    raw = load(name) | {"path": path}
    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)
    assert out["statusCode"] == 400
    assert json.loads(out["body"])["code"] == "invalid_path"
    assert recorder.seen == []
