"""VPC Lattice requests (event structures v1 and v2) and their responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Context, HttpRequest, HttpResponse
from polyserve_aws import _lattice


def echo_app(seen: list[HttpRequest]) -> App:
    app = App("kennel")

    @app.route("/{rest:path}", methods=["GET", "POST", "DELETE"])
    def anything(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return (
            HttpResponse.json({"path": request.path}, status=201)
            .set_cookie("a", "1")
            .set_cookie("b", "2")
        )

    return app


def test_v1_request(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    raw = load("lattice-v1.json")
    out = polyserve_aws.handler(echo_app(seen))(raw, lambda_context)

    (request,) = seen
    assert request.method == "POST"
    assert request.path == "/kennels/3/walks"
    assert request.query.multi_items() == [("limit", "5"), ("since", "2024-05-01")]
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"pet": "rex", "minutes": 25}
    assert request.client == "10.40.12.7"
    assert request.request_id == lambda_context.aws_request_id
    assert request.raw is raw

    assert out["statusCode"] == 201
    assert out["statusDescription"] == "201 Created"
    assert out["isBase64Encoded"] is False
    assert json.loads(out["body"]) == {"path": "/kennels/3/walks"}
    assert out["headers"]["content-type"] == "application/json"
    assert out["headers"]["set-cookie"].startswith("b=2")  # one cookie: the last


def test_v1_query_from_the_raw_path_when_no_parameters_are_given(
    lambda_context: FakeLambdaContext,
) -> None:
    seen: list[HttpRequest] = []
    raw = load("lattice-v1.json")
    del raw["query_string_parameters"]
    raw["raw_path"] = "/kennels/a%20b?tag=x&tag=y%2Bz"
    polyserve_aws.handler(echo_app(seen))(raw, lambda_context)
    assert seen[0].path == "/kennels/a b"
    assert seen[0].query.get_all("tag") == ["x", "y+z"]


def test_v2_request_with_lists_of_values(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    raw = load("lattice-v2.json")
    out = polyserve_aws.handler(echo_app(seen))(raw, lambda_context)

    (request,) = seen
    assert request.method == "GET"
    assert request.path == "/kennels/3/walks"
    assert request.query.get_all("pet") == ["rex", "bella"]
    assert request.query["limit"] == "5"
    assert request.headers.get_all("x-tag") == ["morning", "long"]
    assert request.body == b""
    assert request.client == "10.40.12.9"
    assert out["statusCode"] == 201


def test_v2_single_string_values_are_taken_too(lambda_context: FakeLambdaContext) -> None:
    seen: list[HttpRequest] = []
    raw = load("lattice-v2.json")
    raw["headers"] = {"accept": "text/plain"}
    raw["queryStringParameters"] = {"limit": "9"}
    raw["body"] = base64.b64encode(b"\x00\xff").decode()
    raw["isBase64Encoded"] = True
    raw["method"] = "DELETE"
    polyserve_aws.handler(echo_app(seen))(raw, lambda_context)
    assert seen[0].headers["accept"] == "text/plain"
    assert seen[0].query["limit"] == "9"
    assert seen[0].body == b"\x00\xff"


def test_a_binary_response_is_base64(lambda_context: FakeLambdaContext) -> None:
    app = App("bin")
    app.get("/kennels/3/walks")(lambda: HttpResponse.binary(b"\x89PNG", media_type="image/png"))
    out = polyserve_aws.handler(app)(load("lattice-v2.json"), lambda_context)
    assert out["isBase64Encoded"] is True
    assert base64.b64decode(out["body"]) == b"\x89PNG"


@pytest.mark.parametrize(
    ("sample", "change", "code"),
    [
        ("lattice-v2.json", {"headers": {"accept": [1]}}, "malformed_event"),
        ("lattice-v2.json", {"headers": ["accept"]}, "malformed_event"),
        ("lattice-v2.json", {"path": 7}, "malformed_event"),
        ("lattice-v2.json", {"method": "GET /x"}, "malformed_event"),
        ("lattice-v2.json", {"body": "%%%", "isBase64Encoded": True}, "invalid_base64"),
        ("lattice-v2.json", {"path": "/a%2Fb"}, "invalid_path"),
        ("lattice-v1.json", {"raw_path": None}, "malformed_event"),
        ("lattice-v1.json", {"body": "not base64!"}, "invalid_base64"),
        ("lattice-v1.json", {"query_string_parameters": {"a": ["b"]}}, "malformed_event"),
    ],
)
def test_malformed_lattice_events_get_a_400(
    lambda_context: FakeLambdaContext, sample: str, change: dict[str, Any], code: str
) -> None:
    seen: list[HttpRequest] = []
    raw = load(sample)
    raw.update(change)
    out = polyserve_aws.handler(echo_app(seen))(raw, lambda_context)
    assert seen == []
    assert out["statusCode"] == 400
    assert out["headers"]["content-type"] == "application/problem+json"
    assert json.loads(out["body"])["code"] == code


def test_recognition() -> None:
    assert _lattice.matches(load("lattice-v1.json"))
    assert _lattice.is_v2(load("lattice-v2.json"))
    assert not _lattice.is_v2(load("lattice-v1.json"))
    assert not _lattice.matches(load("apigw-http-post.json"))
    assert not _lattice.matches(load("alb-single.json"))


def test_the_iam_caller_is_the_principal(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    seen: list[Any] = []

    @app.get("/kennels/3/walks")
    def walks(ctx: Context) -> str:
        seen.append(ctx.principal)
        return "ok"

    handler = polyserve_aws.handler(app)
    handler(load("lattice-v2.json"), lambda_context)
    principal = seen[0]
    assert principal.id == "arn:aws:sts::210987654321:assumed-role/kennel-app/i-0123456789abcdef0"
    assert principal.source == "aws.lattice"
    assert principal.claims["sessionName"] == "i-0123456789abcdef0"

    unauthenticated = load("lattice-v2.json")
    unauthenticated["requestContext"]["identity"] = {"type": "NONE", "principal": "forged"}
    handler(unauthenticated, lambda_context)
    handler(
        load("lattice-v1.json") | {"raw_path": "/kennels/3/walks", "method": "GET"}, lambda_context
    )
    assert seen[1:] == [None, None]
