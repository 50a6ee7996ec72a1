"""Context.principal on Lambda, and idempotent replays scoped by it, through the real handler."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from adapters.aws.tests.support import EVENTS, FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Context, HttpResponse, Principal
from polyserve.errors import ConfigurationError
from polyserve.idempotency import MemoryStore, idempotent
from polyserve_aws._identity import Identity

SEEN: list[Principal | None] = []


def _app() -> App:
    app = App("orders")

    @app.post("/orders")
    @idempotent(MemoryStore(), mode="header")
    def create(body: dict[str, Any], ctx: Context) -> HttpResponse:
        principal = ctx.principal
        SEEN.append(principal)
        who = principal.id if principal is not None else None
        return HttpResponse.json({"caller": who, "run": len(SEEN)}, 201)

    @app.get("/whoami")
    def whoami(ctx: Context) -> dict[str, Any]:
        p = ctx.principal
        return {"principal": None if p is None else [p.source, p.id, dict(p.claims)]}

    return app


def _call(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    response = handler(event, FakeLambdaContext())
    assert isinstance(response, dict)
    return response


def _body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


def _principal_of(name: str, **options: Any) -> Principal | None:
    """The principal a ``GET /whoami`` handler sees for sample ``name``."""
    event = load(name)
    if "httpMethod" in event:
        event["httpMethod"], event["path"] = "GET", "/whoami"
    else:
        event["rawPath"] = "/whoami"
        event["requestContext"]["http"]["method"] = "GET"
    body = _body(_call(polyserve_aws.handler(_app(), **options), event))
    if body["principal"] is None:
        return None
    source, id, claims = body["principal"]
    return Principal(id, source, claims)


@pytest.mark.parametrize(
    ("sample", "source", "id"),
    [
        ("apigw-rest-cognito.json", "aws.cognito", "7d4f9a12-3c5b-4e8d-9f01-2a3b4c5d6e7f"),
        ("apigw-rest-lambda-authorizer.json", "aws.lambda", "tenant-42|user-9"),
        (
            "apigw-rest-iam-cognito.json",
            "aws.iam",
            "eu-west-1:5c0ffee0-1111-4222-8333-944445555666",
        ),
        ("apigw-http-jwt.json", "aws.jwt", "auth0|65f0c1d2e3a4b5c6d7e8f901"),
        ("apigw-http-lambda-authorizer.json", "aws.lambda", "svc-billing"),
        ("function-url-iam.json", "aws.iam", "arn:aws:iam::210987654321:user/reporting-bot"),
    ],
)
def test_requestcontext_sources_are_read_by_default(sample: str, source: str, id: str) -> None:
    principal = _principal_of(sample)
    assert principal is not None
    assert (principal.source, principal.id) == (source, id)


def test_claims_carry_what_the_authorizer_said() -> None:
    cognito = _principal_of("apigw-rest-cognito.json")
    assert cognito is not None
    assert cognito.claims["email"] == "maria@example.com"
    lam = _principal_of("apigw-rest-lambda-authorizer.json")
    assert lam is not None
    assert lam.claims == {"tenant": "tenant-42", "plan": "gold"}
    http_lambda = _principal_of("apigw-http-lambda-authorizer.json")
    assert http_lambda is not None
    assert http_lambda.claims["level"] == 3


def test_a_request_without_an_authorizer_has_no_principal() -> None:
    assert _principal_of("apigw-rest-get.json") is None
    assert _principal_of("apigw-http-post.json") is None


def test_alb_oidc_headers_are_ignored_unless_trusted() -> None:
    assert _principal_of("alb-oidc.json") is None
    trusted = _principal_of("alb-oidc.json", identity_headers={"alb_oidc": True})
    assert trusted is not None
    assert (trusted.source, trusted.id) == ("aws.alb_oidc", "248289761001")
    assert trusted.claims["email"] == "jane@example.org"


class _Verifier:
    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.tokens: list[str] = []

    def verify(self, token: str) -> dict[str, Any]:
        self.tokens.append(token)
        if not self.accept:
            from polyserve import HttpError

            raise HttpError(401, "invalid_token", "bad signature")
        return {"sub": "verified-sub", "email": "v@example.org"}


def test_alb_oidc_through_a_verifier_takes_the_verified_claims() -> None:
    good, bad = _Verifier(True), _Verifier(False)
    principal = _principal_of("alb-oidc.json", identity_headers={"alb_oidc": good})
    assert principal is not None
    assert principal.id == "verified-sub"
    assert good.tokens == [load("alb-oidc.json")["headers"]["x-amzn-oidc-data"]]
    assert _principal_of("alb-oidc.json", identity_headers={"alb_oidc": bad}) is None


def test_identity_headers_are_checked_when_the_handler_is_built() -> None:
    with pytest.raises(ConfigurationError, match="unknown identity header source"):
        polyserve_aws.handler(_app(), identity_headers={"iap": True})


def _as(event: dict[str, Any], sub: str) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    claims = copied["requestContext"]["authorizer"]
    if "jwt" in claims:
        claims["jwt"]["claims"]["sub"] = sub
    else:
        claims["claims"]["sub"] = sub
    return copied


@pytest.mark.parametrize("sample", ["apigw-rest-cognito.json", "apigw-http-jwt.json"])
def test_idempotent_replays_go_only_to_the_caller_who_made_them(sample: str) -> None:
    handler = polyserve_aws.handler(_app())
    alice, bob = _as(load(sample), "alice"), _as(load(sample), "bob")
    first_a, first_b = _call(handler, alice), _call(handler, bob)
    again_a, again_b = _call(handler, alice), _call(handler, bob)
    assert [p.id if p else None for p in SEEN] == ["alice", "bob"]
    assert _body(first_a)["caller"] == _body(again_a)["caller"] == "alice"
    assert _body(first_b)["caller"] == _body(again_b)["caller"] == "bob"
    assert first_a["statusCode"] == again_a["statusCode"] == 201


def test_alb_callers_are_told_apart_only_when_the_headers_are_trusted() -> None:
    other = load("alb-oidc.json")
    other["headers"]["x-amzn-oidc-identity"] = "999"
    trusting = polyserve_aws.handler(_app(), identity_headers={"alb_oidc": True})
    assert _body(_call(trusting, load("alb-oidc.json")))["caller"] == "248289761001"
    assert _body(_call(trusting, other))["caller"] == "999"
    assert len(SEEN) == 2


def _samples(config: pytest.Config) -> list[Path]:
    found = sorted(EVENTS.glob("*.json"))
    for folder in config.getoption("--events-dir"):
        found += sorted(Path(folder).rglob("*.json"))
    return found


def test_reading_any_sample_never_raises(request: pytest.FixtureRequest) -> None:
    read = Identity({"alb_oidc": True})
    found = 0
    for path in _samples(request.config):
        principal = read(json.loads(path.read_text()))
        assert principal is None or (principal.id and principal.source.startswith("aws."))
        found += principal is not None
    assert found >= 7


@pytest.mark.parametrize(
    "request_context",
    [
        None, [], "x", {"authorizer": None}, {"authorizer": []}, {"authorizer": {"claims": []}},
        {"authorizer": {"claims": {"sub": 5}}}, {"authorizer": {"claims": {"sub": ""}}},
        {"authorizer": {"jwt": "x"}}, {"authorizer": {"jwt": {"claims": None}}},
        {"authorizer": {"lambda": {"principalId": ["x"]}}}, {"authorizer": {"iam": {"userArn": 1}}},
        {"authorizer": {"iam": {"cognitoIdentity": {"identityId": 3}}}},
        {"authorizer": {"principalId": {"a": 1}}}, {"identity": {"userArn": None}},
        {"elb": {}}, {"elb": {}, "headers": None},
    ],
)  # fmt: skip
def test_odd_shapes_give_no_principal(request_context: Any) -> None:
    read = Identity({"alb_oidc": True})
    assert read({"requestContext": request_context}) is None
    assert read({"requestContext": request_context, "headers": {"x-amzn-oidc-data": "a.b"}}) is None
    assert read(["not", "an", "event"]) is None
