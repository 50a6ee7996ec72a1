"""Context.principal from App Service authentication, through the generated HTTP function."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from adapters.azure.tests.support import call, functions, http_request
from hypothesis import given
from hypothesis import strategies as st

import polyserve_azure
from polyserve import App, Context, HttpError, HttpResponse
from polyserve.errors import ConfigurationError
from polyserve.events import Headers
from polyserve.idempotency import MemoryStore, idempotent
from polyserve_azure._identity import Identity, client_principal_claims

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function


def _client_principal(user_id: str, name: str, roles: tuple[str, ...] = ()) -> str:
    document = {
        "auth_typ": "aad",
        "claims": [
            {
                "typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
                "val": user_id,
            },
            {"typ": "name", "val": name},
            *({"typ": "roles", "val": role} for role in roles),
        ],
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


def _easy_auth(user_id: str, name: str, **more: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-ms-client-principal": _client_principal(user_id, name, ("reader", "writer")),
        "x-ms-client-principal-id": user_id,
        "x-ms-client-principal-name": f"{name}@contoso.example",
        "x-ms-client-principal-idp": "aad",
        **more,
    }


SEEN: list[str | None] = []


def _function(**options: Any) -> Function:
    app = App("azure-orders")

    @app.post("/orders")
    @idempotent(MemoryStore(), mode="header")
    def create(body: dict[str, Any], ctx: Context) -> HttpResponse:
        SEEN.append(ctx.principal.id if ctx.principal else None)
        return HttpResponse.json({"caller": SEEN[-1], "run": len(SEEN)}, 201)

    @app.get("/whoami")
    def whoami(ctx: Context) -> dict[str, Any]:
        p = ctx.principal
        return {} if p is None else {"id": p.id, "source": p.source, "claims": dict(p.claims)}

    return functions(polyserve_azure.function_app(app, **options))["http"]


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()


def _whoami(fn: Function, headers: dict[str, str]) -> Any:
    response = call(fn, http_request("GET", "https://fa.example/api/whoami", headers=headers))
    assert response.status_code == 200
    return json.loads(response.get_body())


def test_easy_auth_headers_are_ignored_unless_the_app_opts_in() -> None:
    headers = _easy_auth("11111111-aaaa-4bbb-8ccc-000000000001", "maria")
    assert _whoami(_function(), headers) == {}
    seen = _whoami(_function(identity_headers={"app_service": True}), headers)
    assert seen["id"] == "11111111-aaaa-4bbb-8ccc-000000000001"
    assert seen["source"] == "azure.app_service"
    assert seen["claims"]["roles"] == ["reader", "writer"]
    assert seen["claims"]["name"] == "maria"
    assert seen["claims"]["idp"] == "aad"


def test_the_id_falls_back_to_the_decoded_principal() -> None:
    headers = _easy_auth("22222222-aaaa-4bbb-8ccc-000000000002", "li")
    del headers["x-ms-client-principal-id"]
    seen = _whoami(_function(identity_headers={"app_service": True}), headers)
    assert seen["id"] == "22222222-aaaa-4bbb-8ccc-000000000002"


def test_static_web_apps_principals_are_read_too() -> None:
    swa = {"identityProvider": "github", "userId": "d75b260a64504067bfc5b2905e3b8182",
           "userDetails": "octo", "userRoles": ["anonymous", "authenticated"]}  # fmt: skip
    header = base64.b64encode(json.dumps(swa).encode()).decode()
    seen = _whoami(
        _function(identity_headers={"app_service": True}), {"x-ms-client-principal": header}
    )
    assert seen["id"] == "d75b260a64504067bfc5b2905e3b8182"
    assert seen["claims"]["userRoles"] == ["anonymous", "authenticated"]


@pytest.mark.parametrize(
    "header",
    ["%%%not-base64%%%", base64.b64encode(b"not json").decode(),
     base64.b64encode(b"[1, 2]").decode(), base64.b64encode(b'{"claims": "x"}').decode(),
     base64.b64encode(b'{"claims": [1, {"typ": 2, "val": "x"}, {"typ": "a"}]}').decode(),
     base64.b64encode(b"\xff\xfe").decode(), "A" * 70_000],
)  # fmt: skip
def test_a_malformed_client_principal_gives_no_principal_and_no_error(header: str) -> None:
    assert (
        _whoami(
            _function(identity_headers={"app_service": True}), {"x-ms-client-principal": header}
        )
        == {}
    )


def test_replays_reach_only_the_caller_who_made_them() -> None:
    fn = _function(identity_headers={"app_service": True})
    url = "https://fa.example/api/orders"

    def post(user: str) -> Any:
        headers = _easy_auth(user, user, **{"idempotency-key": "k-1"})
        native = http_request("POST", url, headers=headers, body=b'{"sku": "A"}')
        response = call(fn, native)
        assert response.status_code == 201
        return json.loads(response.get_body())

    first_a, first_b = post("alice"), post("bob")
    again_a, again_b = post("alice"), post("bob")
    assert SEEN == ["alice", "bob"]
    assert first_a == again_a == {"caller": "alice", "run": 1}
    assert first_b == again_b == {"caller": "bob", "run": 2}


class _Verifier:
    def verify(self, token: str) -> dict[str, Any]:
        if token != "good-id-token":
            raise HttpError(401, "invalid_token", "bad token")
        return {"oid": "verified-oid", "tid": "tenant"}


def test_a_verifier_reads_the_entra_id_token_instead() -> None:
    fn = _function(identity_headers={"app_service": _Verifier()})
    forged = _easy_auth("forged", "forged")
    assert _whoami(fn, forged) == {}
    assert _whoami(fn, {**forged, "x-ms-token-aad-id-token": "bad"}) == {}
    seen = _whoami(fn, {**forged, "x-ms-token-aad-id-token": "good-id-token"})
    assert seen["id"] == "verified-oid"


def test_unknown_sources_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        polyserve_azure.function_app(App("x"), identity_headers={"iap": True})


@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()))
def test_decoding_any_header_never_raises(header: str) -> None:
    claims = client_principal_claims(header)
    assert isinstance(claims, dict)
    principal = Identity({"app_service": True})(Headers({"x-ms-client-principal": header}))
    assert principal is None or isinstance(principal.id, str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(json_values)
def test_decoding_any_json_document_never_raises(document: Any) -> None:
    header = base64.b64encode(json.dumps(document).encode()).decode()
    claims = client_principal_claims(header)
    assert all(isinstance(k, str) for k in claims)
    assert all(isinstance(v, (str, list)) for v in claims.values())
