"""JwtVerifier against a real JWKS server on a loopback port, and ApiKeys."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from polyserve import App, Context, Headers, HttpError, HttpRequest, HttpResponse
from polyserve.auth import ApiKeys, Jwks, JwtVerifier, hash_api_key
from polyserve.errors import ConfigurationError
from polyserve.idempotency import MemoryStore, idempotent

if TYPE_CHECKING:
    from collections.abc import Iterator

ISSUER = "https://issuer.test/"
AUDIENCE = "https://api.test"


class KeyServer:
    """A JWKS endpoint whose key set the test changes, counting the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.failing = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                if server.failing:
                    self.send_error(500)
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class Signer:
    """A private key the test signs with, and its public JWK."""

    def __init__(self, kind: str, kid: str) -> None:
        self.kid = kid
        if kind == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.algorithm = "RS256"
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.algorithm = "ES256"
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**jwk, "kid": kid, "use": "sig", "alg": self.algorithm}

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid})


@pytest.fixture
def server() -> Iterator[KeyServer]:
    running = KeyServer()
    yield running
    running.close()


RSA = Signer("RS256", "rsa-1")
EC = Signer("ES256", "ec-1")
ROTATED = Signer("ES256", "ec-2")


@pytest.fixture
def verifier(server: KeyServer) -> JwtVerifier:
    server.keys = [RSA.jwk, EC.jwk]
    return JwtVerifier(jwks_url=server.url, issuer=ISSUER, audience=AUDIENCE)


def _request(authorization: str | None = None, **headers: str) -> HttpRequest:
    pairs = dict(headers)
    if authorization is not None:
        pairs["authorization"] = authorization
    return HttpRequest("GET", "/me", headers=Headers(pairs))


def _refused(call: Any, code: str = "invalid_token") -> HttpError:
    with pytest.raises(HttpError) as raised:
        call()
    error = raised.value
    assert (error.status, error.code) == (401, code)
    assert error.headers["www-authenticate"].startswith(("Bearer realm=", "ApiKey realm="))
    return error


@pytest.mark.parametrize("signer", [RSA, EC], ids=["RS256", "ES256"])
def test_a_valid_token_gives_the_principal_and_sets_it_on_the_context(
    verifier: JwtVerifier, signer: Signer
) -> None:
    ctx = Context("test")
    principal = verifier(_request("Bearer " + signer.token(email="u@example.com")), ctx)
    assert (principal.id, principal.source) == ("user-1", "jwt")
    assert principal.claims["email"] == "u@example.com"
    assert ctx.principal is principal


def test_keys_are_fetched_once_and_cached(verifier: JwtVerifier, server: KeyServer) -> None:
    for _ in range(5):
        verifier.verify(RSA.token())
        verifier.verify(EC.token())
    assert server.fetches == 1


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"aud": "https://other.test"}, "another audience"),
        ({"iss": "https://evil.test/"}, "another issuer"),
        ({"exp": None}, "'exp'"),
        ({"aud": None}, "'aud'"),
    ],
)
def test_tokens_failing_a_claim_check_are_401(
    verifier: JwtVerifier, claims: dict[str, Any], detail: str
) -> None:
    error = _refused(lambda: verifier(_request("Bearer " + EC.token(**claims))))
    assert detail in error.detail
    assert 'error="invalid_token"' in error.headers["www-authenticate"]


def test_leeway_allows_small_clock_skew(verifier: JwtVerifier) -> None:
    assert verifier.verify(EC.token(exp=int(time.time()) - 10))["sub"] == "user-1"


def test_an_unknown_kid_refetches_the_keys_so_a_rotation_is_picked_up(
    server: KeyServer,
) -> None:
    server.keys = [EC.jwk]
    now = [0.0]
    keys = Jwks(server.url, clock=lambda: now[0])
    verifier = JwtVerifier(jwks=keys, issuer=ISSUER, audience=AUDIENCE)
    verifier.verify(EC.token())
    assert server.fetches == 1
    now[0] = 600.0  # well within the cache's hour: only the unknown kid causes a fetch
    server.keys = [EC.jwk, ROTATED.jwk]
    assert verifier.verify(ROTATED.token(sub="rotated"))["sub"] == "rotated"
    assert verifier.verify(EC.token())["sub"] == "user-1"
    assert server.fetches == 2


def test_made_up_kids_cannot_flood_the_issuer(server: KeyServer) -> None:
    server.keys = [EC.jwk]
    now = [0.0]
    keys = Jwks(server.url, min_refresh_seconds=30.0, clock=lambda: now[0])
    verifier = JwtVerifier(jwks=keys, issuer=ISSUER, audience=AUDIENCE)
    verifier.verify(EC.token())
    now[0] = 31.0
    for n in range(5):
        now[0] += 1.0
        _refused(lambda n=n: verifier.verify(Signer("ES256", f"made-up-{n}").token()))
    assert server.fetches == 2  # the first fetch, and one refetch for all the unknown kids
    now[0] = 70.0
    server.keys = [EC.jwk, ROTATED.jwk]
    assert verifier.verify(ROTATED.token())["sub"] == "user-1"
    assert server.fetches == 3


def test_cached_keys_are_refreshed_after_cache_seconds(server: KeyServer) -> None:
    server.keys = [EC.jwk]
    now = [0.0]
    verifier = JwtVerifier(
        jwks=Jwks(server.url, cache_seconds=60, clock=lambda: now[0]),
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    verifier.verify(EC.token())
    now[0] = 61.0
    server.failing = True
    # The issuer is down: the keys fetched before stay in use.
    assert verifier.verify(EC.token())["sub"] == "user-1"
    assert server.fetches == 2


def test_no_keys_at_all_is_a_503_not_a_401(server: KeyServer) -> None:
    server.failing = True
    verifier = JwtVerifier(jwks_url=server.url, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(HttpError) as raised:
        verifier.verify(EC.token())
    assert (raised.value.status, raised.value.code) == (503, "identity_keys_unavailable")


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_tampered_token_is_401(verifier: JwtVerifier) -> None:
    header, payload, signature = EC.token().split(".")
    other = json.loads(base64.urlsafe_b64decode(payload + "=="))
    other["sub"] = "admin"
    forged_payload = f"{header}.{_b64(other)}.{signature}"
    # A character inside the signature: all six of its bits are signature bits (some of
    # the last character's are padding, which decoders may ignore).
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    for token in (forged_payload, f"{header}.{payload}.{flipped}"):
        error = _refused(lambda token=token: verifier.verify(token))
        assert "signature" in error.detail or "invalid" in error.detail


def test_alg_none_is_refused(verifier: JwtVerifier) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}
    for alg in ("none", "None", "NONE"):
        token = f"{_b64({'alg': alg, 'kid': 'ec-1'})}.{_b64(claims)}."
        _refused(lambda token=token: verifier.verify(token))
    with pytest.raises(ConfigurationError):
        JwtVerifier(jwks={"keys": []}, issuer=ISSUER, audience=AUDIENCE, algorithms=["none"])


def test_hmac_signed_with_the_public_key_is_refused(verifier: JwtVerifier) -> None:
    # The classic confusion: HS256 keyed with the RSA public key the JWKS publishes.
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}
    public = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public, json.dumps(RSA.jwk).encode()):
        signing_input = f"{_b64({'alg': 'HS256', 'kid': 'rsa-1'})}.{_b64(claims)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(mac)}"
        _refused(lambda token=token: verifier.verify(token))
    with pytest.raises(ConfigurationError):
        JwtVerifier(jwks={"keys": []}, issuer=ISSUER, audience=AUDIENCE, algorithms=["HS256"])


def test_an_algorithm_other_than_the_keys_is_refused(verifier: JwtVerifier) -> None:
    # Signed with the EC key, but the header claims the RSA key's id.
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, EC.private, algorithm="ES256", headers={"kid": "rsa-1"})
    _refused(lambda: verifier.verify(token))


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwdw==", "garbage", "Bearer a.b.c", "Bearer ...",
     "Bearer " + "x" * 20_000, "Bearer " + _b64(b"\xff") + "." + _b64({"sub": 1}) + ".sig",
     f"Bearer {_b64([1])}.{_b64({'sub': 1})}.sig", "Bearer eyJhbGciOiJFUzI1NiJ9.e30",
     f"Bearer {_b64({'alg': 'ES256', 'kid': 7})}.{_b64({})}.c2ln"],
)  # fmt: skip
def test_garbage_is_401_never_a_crash(verifier: JwtVerifier, authorization: str) -> None:
    code = "missing_credentials" if not authorization else "invalid_token"
    error = _refused(lambda: verifier(_request(authorization or None)), code)
    if code == "missing_credentials":
        assert "error=" not in error.headers["www-authenticate"]


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=300)
    | st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.text(), st.text(), st.text())
)
def test_any_text_is_refused_with_a_401(token: str) -> None:
    verifier = JwtVerifier(jwks={"keys": [EC.jwk]}, issuer=ISSUER, audience=AUDIENCE)
    _refused(lambda: verifier.verify(token))


def test_a_handler_uses_the_verifier_and_errors_are_problem_responses(
    verifier: JwtVerifier,
) -> None:
    app = App("api")

    @app.get("/me")
    def me(request: HttpRequest, ctx: Context) -> dict[str, str]:
        return {"id": verifier(request, ctx).id}

    ok = app.handle_http(_request("Bearer " + RSA.token(sub="u-9")), Context("t"))
    assert json.loads(ok.body) == {"id": "u-9"}
    refused = app.handle_http(_request("Bearer nope"), Context("t"))
    assert refused.status == 401
    assert refused.media_type == "application/problem+json"
    assert json.loads(refused.body)["code"] == "invalid_token"
    assert refused.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )


def test_as_an_idempotency_scope_the_verifier_runs_before_any_replay(
    verifier: JwtVerifier,
) -> None:
    app = App("orders")
    runs: list[str] = []

    @app.post("/orders")
    @idempotent(MemoryStore(), mode="header", scope=verifier)
    def create(request: HttpRequest, ctx: Context) -> HttpResponse:
        assert ctx.principal is not None
        runs.append(ctx.principal.id)
        return HttpResponse.json({"caller": ctx.principal.id}, 201)

    def post(token: str) -> HttpResponse:
        headers = Headers({"authorization": "Bearer " + token, "idempotency-key": "k"})
        return app.handle_http(HttpRequest("POST", "/orders", headers=headers), Context("t"))

    alice, bob = EC.token(sub="alice"), RSA.token(sub="bob")
    assert post(alice).status == 201
    assert json.loads(post(bob).body) == {"caller": "bob"}
    assert json.loads(post(EC.token(sub="alice")).body) == {"caller": "alice"}
    assert post(EC.token(sub="alice", exp=int(time.time()) - 300)).status == 401
    assert runs == ["alice", "bob"]


def test_plain_http_to_another_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="https"):
        JwtVerifier(jwks_url="http://issuer.test/keys", issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ConfigurationError):
        JwtVerifier(jwks_url="https://issuer.test/keys", issuer="", audience=AUDIENCE)


def test_iap_assertions_verified_through_the_gcp_adapter(server: KeyServer) -> None:
    import flask

    import polyserve_gcp

    iap = Signer("ES256", "iap-key")
    server.keys = [iap.jwk]
    audience = "/projects/123456/apps/shop"
    verifier = JwtVerifier(
        jwks_url=server.url, issuer="https://cloud.google.com/iap", audience=audience
    )
    app = App("iap")

    @app.get("/whoami")
    def whoami(ctx: Context) -> dict[str, Any]:
        return {"id": ctx.principal.id if ctx.principal else None}

    target = polyserve_gcp.http(app, identity_headers={"iap": verifier})
    good = iap.token(iss="https://cloud.google.com/iap", aud=audience, sub="accounts.google.com:7")
    forged = EC.token(iss="https://cloud.google.com/iap", aud=audience, sub="accounts.google.com:1")
    flask_app = flask.Flask(__name__)
    seen = []
    for token in (good, forged):
        headers = {"x-goog-iap-jwt-assertion": token, "x-goog-authenticated-user-id": "forged"}
        with flask_app.test_request_context("/whoami", headers=list(headers.items())):
            seen.append(json.loads(target(flask.request).get_data())["id"])
    assert seen == ["accounts.google.com:7", None]


def test_api_keys_name_their_caller() -> None:
    keys = ApiKeys({"billing": "key-billing-123", "reports": "key-reports-456"})
    ctx = Context("t")
    principal = keys(_request(**{"x-api-key": "key-reports-456"}), ctx)
    assert (principal.id, principal.source) == ("reports", "api_key")
    assert ctx.principal == principal
    error = _refused(lambda: keys(_request(**{"x-api-key": "key-reports-457"})), "invalid_api_key")
    assert error.headers["www-authenticate"].startswith("ApiKey")
    _refused(lambda: keys(_request()), "missing_credentials")


def test_api_keys_may_be_stored_hashed_or_looked_up() -> None:
    hashed = ApiKeys({"ops": hash_api_key("s3cret")}, hashed=True, header="X-Key")
    assert hashed(_request(**{"x-key": "s3cret"})).id == "ops"
    _refused(lambda: hashed(_request(**{"x-key": hash_api_key("s3cret")})), "invalid_api_key")
    looked_up = ApiKeys(lambda key: "svc" if key == "k-1" else None)
    assert looked_up(_request(**{"x-api-key": "k-1"})).id == "svc"
    _refused(lambda: looked_up(_request(**{"x-api-key": "k-2"})), "invalid_api_key")


@pytest.mark.parametrize(
    ("keys", "hashed"), [({}, False), ({"a": ""}, False), ({"": "k"}, False), ({"a": "k"}, True)]
)
def test_api_keys_configuration_is_checked(keys: dict[str, str], hashed: bool) -> None:
    with pytest.raises(ConfigurationError):
        ApiKeys(keys, hashed=hashed)
