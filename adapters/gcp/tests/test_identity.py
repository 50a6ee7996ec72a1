"""Context.principal behind IAP and Cloud Run IAM, through the HTTP entry point."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import flask
import pytest
from hypothesis import given
from hypothesis import strategies as st

import polyserve_gcp
from polyserve import App, Context, HttpError, HttpResponse
from polyserve.errors import ConfigurationError
from polyserve.events import Headers
from polyserve.idempotency import MemoryStore, idempotent
from polyserve_gcp._identity import Identity
from polyserve_testkit.tokens import segment

if TYPE_CHECKING:
    from polyserve_gcp.types import HttpFunction

FLASK = flask.Flask(__name__)
SEEN: list[str | None] = []


def _stripped_token(sub: str, email: str) -> str:
    """An ID token as Cloud Run forwards it once checked: signature replaced."""
    claims = {"iss": "https://accounts.google.com", "aud": "https://orders-xyz-ew.a.run.app",
              "sub": sub, "email": email, "exp": 1714561200, "iat": 1714557600}  # fmt: skip
    return f"{segment({'alg': 'RS256', 'kid': 'k1'})}.{segment(claims)}.SIGNATURE_REMOVED_BY_GOOGLE"


def _iap(user: str) -> dict[str, str]:
    claims = {"iss": "https://cloud.google.com/iap", "sub": f"accounts.google.com:{user}",
              "email": f"{user}@example.com", "aud": "/projects/1234/apps/shop"}  # fmt: skip
    return {
        "x-goog-authenticated-user-id": f"accounts.google.com:{user}",
        "x-goog-authenticated-user-email": f"accounts.google.com:{user}@example.com",
        "x-goog-iap-jwt-assertion": f"{segment({'alg': 'ES256'})}.{segment(claims)}.c2ln",
    }


def _target(**options: Any) -> HttpFunction:
    app = App("gcp-orders")

    @app.post("/orders")
    @idempotent(MemoryStore(), mode="header")
    def create(body: dict[str, Any], ctx: Context) -> HttpResponse:
        SEEN.append(ctx.principal.id if ctx.principal else None)
        return HttpResponse.json({"caller": SEEN[-1], "run": len(SEEN)}, 201)

    @app.get("/whoami")
    def whoami(ctx: Context) -> dict[str, Any]:
        p = ctx.principal
        return {} if p is None else {"id": p.id, "source": p.source, "claims": dict(p.claims)}

    return polyserve_gcp.http(app, **options)


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


def _whoami(target: HttpFunction, headers: dict[str, str]) -> Any:
    with FLASK.test_request_context("/whoami", headers=list(headers.items())):
        response = target(flask.request)
    assert response.status_code == 200
    return json.loads(response.get_data())


def test_iap_headers_are_ignored_unless_trusted() -> None:
    assert _whoami(_target(), _iap("ana")) == {}
    seen = _whoami(_target(identity_headers={"iap": True}), _iap("ana"))
    assert (seen["source"], seen["id"]) == ("gcp.iap", "accounts.google.com:ana")
    assert seen["claims"]["email"] == "ana@example.com"


class _Verifier:
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def verify(self, token: str) -> dict[str, Any]:
        self.tokens.append(token)
        if not token.endswith(".c2ln"):
            raise HttpError(401, "invalid_token", "bad signature")
        return {"sub": "accounts.google.com:verified", "email": "v@example.com"}


def test_iap_through_a_verifier_takes_only_verified_assertions() -> None:
    verifier = _Verifier()
    target = _target(identity_headers={"iap": verifier})
    assert _whoami(target, _iap("ana"))["id"] == "accounts.google.com:verified"
    forged = {**_iap("ana"), "x-goog-iap-jwt-assertion": "a.b.forged"}
    assert _whoami(target, forged) == {}
    without = {k: v for k, v in _iap("ana").items() if k != "x-goog-iap-jwt-assertion"}
    assert _whoami(target, without) == {}


def test_cloud_run_iam_reads_only_tokens_google_checked() -> None:
    target = _target(identity_headers={"iam": True})
    checked = {
        "authorization": "Bearer " + _stripped_token("1057", "svc@p.iam.gserviceaccount.com")
    }
    seen = _whoami(target, checked)
    assert (seen["source"], seen["id"]) == ("gcp.iam", "1057")
    assert seen["claims"]["email"] == "svc@p.iam.gserviceaccount.com"
    still_signed = checked["authorization"].replace("SIGNATURE_REMOVED_BY_GOOGLE", "c2ln")
    assert _whoami(target, {"authorization": still_signed}) == {}
    assert _whoami(_target(), checked) == {}


def test_x_serverless_authorization_wins_over_the_apps_own_authorization() -> None:
    target = _target(identity_headers={"iam": True})
    headers = {
        "x-serverless-authorization": "Bearer " + _stripped_token("42", "a@example.com"),
        "authorization": "Bearer " + _stripped_token("forged", "f@example.com"),
    }
    assert _whoami(target, headers)["id"] == "42"


def test_iam_takes_no_verifier_and_unknown_sources_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="nothing left to verify"):
        _target(identity_headers={"iam": _Verifier()})
    with pytest.raises(ConfigurationError, match="unknown identity header source"):
        _target(identity_headers={"access": True})


def test_replays_reach_only_the_caller_who_made_them() -> None:
    target = _target(identity_headers={"iap": True})

    def post(user: str) -> Any:
        headers = [*_iap(user).items(), ("Idempotency-Key", "k-9")]
        with FLASK.test_request_context(
            "/orders", method="POST", json={"sku": "A"}, headers=headers
        ):
            response = target(flask.request)
        assert response.status_code == 201
        return json.loads(response.get_data())

    first_a, first_b, again_a, again_b = post("ana"), post("ben"), post("ana"), post("ben")
    assert SEEN == ["accounts.google.com:ana", "accounts.google.com:ben"]
    assert first_a == again_a
    assert first_b == again_b
    assert first_a != first_b


@given(
    st.dictionaries(
        st.sampled_from(["authorization", "x-serverless-authorization", "x-goog-iap-jwt-assertion",
                         "x-goog-authenticated-user-id", "x-goog-authenticated-user-email"]),
        st.text(max_size=80) | st.builds(lambda s: f"Bearer a.{s}.SIGNATURE_REMOVED_BY_GOOGLE",
                                          st.text(max_size=40)),
    )
)  # fmt: skip
def test_reading_any_headers_never_raises(headers: dict[str, str]) -> None:
    principal = Identity({"iap": True, "iam": True})(Headers(headers))
    assert principal is None or (principal.id and principal.source in ("gcp.iap", "gcp.iam"))
