"""Context.principal from Cloudflare Access, on the entry point with fake JavaScript objects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyserve import App, Context, HttpError, HttpResponse
from polyserve.errors import ConfigurationError
from polyserve.events import Headers
from polyserve.idempotency import MemoryStore, idempotent
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare._identity import Identity
from polyserve_cloudflare.testing import (
    FakeExecutionContext,
    FakeRequest,
    FakeResponse,
    FakeRuntime,
)
from polyserve_testkit.tokens import unsigned_token


def _whoami(**options: Any) -> Any:
    app = App("access")

    @app.get("/whoami")
    def whoami(ctx: Context) -> dict[str, Any]:
        p = ctx.principal
        return {} if p is None else {"id": p.id, "source": p.source, "claims": dict(p.claims)}

    cls = entrypoint(app, runtime=FakeRuntime(), **options)

    def call(headers: dict[str, str]) -> Any:
        worker = cls(FakeExecutionContext(), {})
        request = FakeRequest("GET", "https://w.example/whoami", list(headers.items()))
        response = asyncio.run(worker.fetch(request))
        assert isinstance(response, FakeResponse)
        assert response.status == 200
        return response.json()

    return call


class _Verifier:
    def verify(self, token: str) -> dict[str, Any]:
        if not token.endswith(".c2ln"):
            raise HttpError(401, "invalid_token", "bad signature")
        return {"sub": "", "common_name": "svc.access", "type": "app"}


def test_a_verified_service_token_is_named_by_its_common_name() -> None:
    call = _whoami(identity_headers={"access": _Verifier()})
    seen = call({"cf-access-jwt-assertion": unsigned_token({"sub": "x"})})
    assert (seen["source"], seen["id"]) == ("cloudflare.access", "svc.access")
    assert call({"cf-access-jwt-assertion": unsigned_token({"sub": "x"}, "forged")}) == {}
    assert call({"cf-access-authenticated-user-email": "a@example.com"}) == {}


def test_replays_reach_only_the_caller_who_made_them() -> None:
    app = App("access-orders")
    seen: list[str | None] = []

    @app.post("/orders")
    @idempotent(MemoryStore(), mode="header")
    def create(body: dict[str, Any], ctx: Context) -> HttpResponse:
        seen.append(ctx.principal.id if ctx.principal else None)
        return HttpResponse.json({"caller": seen[-1], "run": len(seen)}, 201)

    cls = entrypoint(app, runtime=FakeRuntime(), identity_headers={"access": True})

    def post(user: str) -> Any:
        headers = [
            ("cf-access-jwt-assertion", unsigned_token({"sub": user})),
            ("idempotency-key", "k-9"),
            ("content-type", "application/json"),
        ]
        request = FakeRequest("POST", "https://w.example/orders", headers, b'{"sku": "A"}')
        response = asyncio.run(cls(FakeExecutionContext(), {}).fetch(request))
        assert isinstance(response, FakeResponse)
        assert response.status == 201
        return response.json()

    first_a, first_b, again_a, again_b = post("ana"), post("ben"), post("ana"), post("ben")
    assert seen == ["ana", "ben"]
    assert (first_a, first_b) == (again_a, again_b)
    assert first_a != first_b


def test_trusted_headers_fall_back_to_the_email_header() -> None:
    call = _whoami(identity_headers={"access": True})
    assert call({"cf-access-authenticated-user-email": "a@example.com"})["id"] == "a@example.com"
    assert call({"cf-access-jwt-assertion": unsigned_token({"sub": "u-1"})})["id"] == "u-1"
    assert _whoami()({"cf-access-jwt-assertion": unsigned_token({"sub": "u-1"})}) == {}


def test_unknown_sources_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        entrypoint(App("x"), identity_headers={"app_service": True})


@given(st.dictionaries(
    st.sampled_from(["cf-access-jwt-assertion", "cf-access-authenticated-user-email"]),
    st.text(max_size=60) | st.dictionaries(st.text(max_size=5), st.text(max_size=5)).map(unsigned_token),
))  # fmt: skip
def test_reading_any_headers_never_raises(headers: dict[str, str]) -> None:
    for trust in (True, _Verifier()):
        principal = Identity({"access": trust})(Headers(headers))
        assert principal is None or (isinstance(principal.id, str) and principal.id)
