"""Verifiers an app runs itself, for callers the platform did not authenticate.

``JwtVerifier`` checks bearer tokens (JWTs) against a key set (JWKS) fetched over
HTTPS; ``ApiKeys`` checks a key sent in a header. Both are callables of
``(request, context)`` that return the caller's ``Principal`` (and record it as
``context.principal``), or raise ``HttpError(401)`` with a ``WWW-Authenticate``
header. Use one inside a handler::

    verify = JwtVerifier(jwks_url=..., issuer=..., audience=...)

    @app.get("/me")
    def me(request: HttpRequest, ctx: Context) -> dict:
        principal = verify(request, ctx)
        ...

or, on an idempotent handler, as its ``scope=`` (``@idempotent(scope=verify)``), so
the caller is checked before any stored response is replayed.

``JwtVerifier`` needs PyJWT with ``cryptography`` (``pip install 'polyserve-core[jwt]'``),
imported the first time a token is checked. A ``JwtVerifier`` is also a
``TokenVerifier``: adapters use its ``verify`` for the signed assertions of IAP,
Cloudflare Access and the like (``identity_headers=``).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from polyserve.errors import ConfigurationError, HttpError, MissingDependencyError
from polyserve.identity import Principal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from polyserve.context import Context
    from polyserve.events import HttpRequest

    # Key id -> (PyJWK, the algorithm the key set names for it, if any).
    _KeyMap = dict[str | None, tuple[Any, str | None]]

__all__ = ["ApiKeys", "Jwks", "JwtVerifier", "hash_api_key"]

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The algorithms a ``JwtVerifier`` may accept: public-key signatures only. ``none`` and
the HMAC family (whose "key" would be the public key itself) are never accepted."""

_MAX_TOKEN = 16 * 1024
_MAX_JWKS = 1024 * 1024
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def _unauthorized(
    scheme: str, realm: str, code: str, detail: str, *, error: bool = True
) -> HttpError:
    # RFC 6750 section 3: a request without credentials gets the challenge alone; a bad
    # token also names the error. The detail is ours, never the token's content.
    challenge = f'{scheme} realm="{realm}"'
    if error:
        challenge += f', error="invalid_token", error_description="{detail}"'
    return HttpError(401, code, detail, headers={"www-authenticate": challenge})


def _jwt() -> Any:
    try:
        import jwt
    except ImportError as exc:
        raise MissingDependencyError(
            "PyJWT", feature="polyserve.auth.JwtVerifier", extra="polyserve-core[jwt]"
        ) from exc
    return jwt


class Jwks:
    """A JSON Web Key Set fetched from ``url``, cached, and fetched again when needed.

    Keys are kept for ``cache_seconds``. A token signed with a key id the set does not
    have triggers a fetch at once (the issuer rotated its keys), but at most once every
    ``min_refresh_seconds``, so a flood of made-up key ids cannot become a flood of
    requests to the issuer. When a fetch fails, keys fetched before stay in use.

    ``url`` must be ``https://`` (``http://`` is allowed for loopback hosts, for tests
    and local issuers). ``keys`` gives a fixed set instead (a JWKS document), for
    runtimes that cannot open connections.

    Raises:
        ConfigurationError: neither or both of ``url`` and ``keys``, or a plain-HTTP
            URL to another host.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        keys: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
        cache_seconds: float = 3600.0,
        min_refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (keys is None):
            raise ConfigurationError("Jwks needs exactly one of url= or keys=")
        if url is not None:
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            secure = parts.scheme == "https" or (
                parts.scheme == "http" and parts.hostname in _LOOPBACK
            )
            if not secure or not parts.hostname:
                raise ConfigurationError(f"the JWKS URL must be https://, got {url!r}")
        self.url = url
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._static = dict(keys) if keys is not None else None
        self._keys: _KeyMap | None = None
        self._fetched_at: float | None = None
        self._tried_at: float | None = None

    def key(self, kid: str | None) -> tuple[Any, str | None]:
        """The key with id ``kid`` (``None`` picks the set's only key): a PyJWT ``PyJWK``,
        and the algorithm the set names for it (``None`` when it names none).

        Raises:
            HttpError: 401 ``invalid_token`` when no such key exists, even after a fetch;
                503 ``identity_keys_unavailable`` when no key set could be fetched at all.
        """
        with self._lock:
            keys: _KeyMap = self._current()
            if kid not in keys and self._may_refresh():
                keys = self._refresh(keys)
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        found = keys.get(kid)
        if found is None:
            raise HttpError(401, "invalid_token", "the token is signed with an unknown key")
        return found

    def _current(self) -> _KeyMap:
        now = self._clock()
        keys = self._keys
        if keys is None or (
            self._static is None
            and self._fetched_at is not None
            and now - self._fetched_at >= self.cache_seconds
            and self._may_refresh()
        ):
            keys = self._refresh(keys)
        return keys

    def _may_refresh(self) -> bool:
        return self._static is None and (
            self._tried_at is None or self._clock() - self._tried_at >= self.min_refresh_seconds
        )

    def _refresh(self, previous: _KeyMap | None) -> _KeyMap:
        self._tried_at = self._clock()
        try:
            document = self._static if self._static is not None else self._fetch()
            keys = _parse(document)
        except Exception as exc:
            import logging

            logging.getLogger("polyserve").warning(
                "could not fetch the JWKS %s: %s", self.url, type(exc).__name__
            )
            if previous is not None:
                return previous
            raise HttpError(
                503, "identity_keys_unavailable", "the keys to check tokens could not be fetched"
            ) from None
        self._keys, self._fetched_at = keys, self._tried_at
        return keys

    def _fetch(self) -> Any:
        import json
        from urllib.request import Request, urlopen

        assert self.url is not None
        request = Request(self.url, headers={"accept": "application/json"})
        from urllib.error import HTTPError as FetchError

        try:
            with urlopen(request, timeout=self.timeout) as response:
                body = response.read(_MAX_JWKS + 1)
        except FetchError as exc:
            exc.close()  # it holds the error response open
            raise
        if len(body) > _MAX_JWKS:
            raise ValueError("the JWKS document is too large")
        return json.loads(body)


def _parse(document: Any) -> _KeyMap:
    """The usable keys of a JWKS document, by key id (keys of unknown types are skipped)."""
    jwt = _jwt()
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: _KeyMap = {}
    for item in document["keys"]:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK.from_dict(item)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        kid, alg = item.get("kid"), item.get("alg")
        keys[kid if isinstance(kid, str) else None] = (key, alg if isinstance(alg, str) else None)
    if not keys:
        raise ValueError("the JWKS document has no usable signing key")
    return keys


class JwtVerifier:
    """Checks JWT bearer tokens against an issuer's keys: a ``TokenVerifier`` and a
    ``(request, context) -> Principal`` callable.

    A token is accepted when its signature verifies with the key its ``kid`` names,
    with one of ``algorithms`` (public-key algorithms only: ``none`` and HMAC are
    refused); its ``iss`` is ``issuer`` (or one of them); its ``aud`` names ``audience``
    (or one of them); it has not expired and is not early (``exp``, ``nbf``, ``iat``,
    give or take ``leeway`` seconds); and it has every claim in ``require``.

    Args:
        jwks_url: where the issuer publishes its keys (``https://``), fetched on first
            use and cached (see ``Jwks``); or ``jwks``: a ``Jwks``, or a JWKS document.
        issuer: the expected ``iss``.
        audience: the expected ``aud``.
        algorithms: the accepted signature algorithms.
        leeway: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
        require: claims a token must have (``exp``, ``iss`` and ``aud`` always).
        id_claim: the claim that names the caller (``Principal.id``).
        source: ``Principal.source`` of the callers it accepts.
        header: the request header carrying the token, after ``scheme`` (``Bearer``).
        realm: the ``realm`` of the ``WWW-Authenticate`` challenge.

    Raises:
        ConfigurationError: no key source, an empty issuer or audience, or an algorithm
            outside ``ASYMMETRIC_ALGORITHMS``.
    """

    def __init__(
        self,
        *,
        jwks_url: str | None = None,
        jwks: Jwks | Mapping[str, Any] | None = None,
        issuer: str | Sequence[str],
        audience: str | Sequence[str],
        algorithms: Sequence[str] = ("RS256", "ES256"),
        leeway: float = 30.0,
        require: Sequence[str] = (),
        id_claim: str = "sub",
        source: str = "jwt",
        header: str = "authorization",
        scheme: str = "Bearer",
        realm: str = "api",
        timeout: float = 5.0,
    ) -> None:
        if (jwks_url is None) == (jwks is None):
            raise ConfigurationError("JwtVerifier needs exactly one of jwks_url= or jwks=")
        if isinstance(jwks, Jwks):
            self.jwks = jwks
        elif jwks is not None:
            self.jwks = Jwks(keys=jwks)
        else:
            self.jwks = Jwks(jwks_url, timeout=timeout)
        self.issuer = [issuer] if isinstance(issuer, str) else list(issuer)
        self.audience = [audience] if isinstance(audience, str) else list(audience)
        if not all(self.issuer) or not self.issuer or not all(self.audience) or not self.audience:
            raise ConfigurationError("JwtVerifier needs a non-empty issuer and audience")
        unsafe = set(algorithms) - ASYMMETRIC_ALGORITHMS
        if unsafe or not algorithms:
            raise ConfigurationError(
                f"JwtVerifier accepts public-key algorithms only, got {sorted(unsafe) or 'none'}"
            )
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.require = sorted({"exp", "iss", "aud", *require})
        self.id_claim = id_claim
        self.source = source
        self.header = header.lower()
        self.scheme = scheme
        self.realm = realm

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` once it passes every check.

        Raises:
            HttpError: 401 ``invalid_token`` (with ``WWW-Authenticate``) for any token
                that fails, however malformed; 503 ``identity_keys_unavailable`` when the
                issuer's keys cannot be fetched.
            MissingDependencyError: PyJWT is not installed.
        """
        jwt = _jwt()
        if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise self._invalid("the token is malformed")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise self._invalid("the token is malformed") from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        if algorithm not in self.algorithms:
            raise self._invalid("the token's algorithm is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise self._invalid("the token is malformed")
        try:
            key, key_algorithm = self.jwks.key(kid)
        except HttpError as exc:
            if exc.status != 401:
                raise
            raise self._invalid(exc.detail) from None
        if key_algorithm not in (None, algorithm):
            raise self._invalid("the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": self.require},
            )
        except jwt.ExpiredSignatureError:
            raise self._invalid("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise self._invalid("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise self._invalid("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise self._invalid("the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise self._invalid(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise self._invalid("the token's signature does not verify") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise self._invalid("the token is invalid") from None
        if not isinstance(claims, dict):
            raise self._invalid("the token is invalid")
        return claims

    def __call__(self, request: HttpRequest, context: Context | None = None) -> Principal:
        """The caller of ``request``, from its bearer token; also set as ``context.principal``.

        Raises:
            HttpError: 401 ``missing_credentials`` without a token, 401 ``invalid_token``
                for a token that fails (see ``verify``).
        """
        value = request.headers.get(self.header, "").strip()
        scheme, _, token = value.partition(" ")
        if not value:
            raise _unauthorized(
                self.scheme, self.realm, "missing_credentials", "a bearer token is required",
                error=False,
            )  # fmt: skip
        if scheme.lower() != self.scheme.lower() or not token.strip():
            raise self._invalid(f"expected {self.scheme} credentials")
        claims = self.verify(token.strip())
        subject = claims.get(self.id_claim)
        if not isinstance(subject, str) or not subject:
            raise self._invalid(f"the token has no {self.id_claim!r} claim")
        principal = Principal(subject, self.source, claims)
        if context is not None:
            context.principal = principal
        return principal

    def _invalid(self, detail: str) -> HttpError:
        return _unauthorized(self.scheme, self.realm, "invalid_token", detail)


def hash_api_key(key: str) -> str:
    """The SHA-256 (hex) of an API key, as ``ApiKeys(..., hashed=True)`` stores it."""
    import hashlib

    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class ApiKeys:
    """Checks an API key sent in a header: a ``(request, context) -> Principal`` callable.

    ``keys`` maps each caller's id to its key, or with ``hashed=True`` to the key's
    SHA-256 (``hash_api_key``), so the keys themselves need not be stored. A presented
    key is hashed and compared with every stored one in constant time. ``keys`` may
    instead be a function of the presented key returning the caller's id (or ``None``),
    for keys kept elsewhere; comparing safely is then its job.

    Raises:
        ConfigurationError: an empty mapping, an empty key, or (``hashed=True``) a value
            that is not a SHA-256 hex digest.
    """

    def __init__(
        self,
        keys: Mapping[str, str] | Callable[[str], str | None],
        *,
        header: str = "x-api-key",
        hashed: bool = False,
        source: str = "api_key",
        realm: str = "api",
    ) -> None:
        self.header = header.lower()
        self.source = source
        self.realm = realm
        self._lookup: Callable[[str], str | None] | None = None
        self._digests: list[tuple[str, bytes]] = []
        if callable(keys):
            self._lookup = keys
            return
        if not keys:
            raise ConfigurationError("ApiKeys needs at least one key")
        for caller, key in keys.items():
            if not isinstance(caller, str) or not caller or not isinstance(key, str) or not key:
                raise ConfigurationError("ApiKeys maps caller ids to non-empty keys")
            digest = key.lower() if hashed else hash_api_key(key)
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ConfigurationError(f"the key of {caller!r} is not a SHA-256 hex digest")
            self._digests.append((caller, bytes.fromhex(digest)))

    def __call__(self, request: HttpRequest, context: Context | None = None) -> Principal:
        """The caller whose key ``request`` carries; also set as ``context.principal``.

        Raises:
            HttpError: 401 ``missing_credentials`` without a key, 401 ``invalid_api_key``
                for a key that matches no caller.
        """
        presented = request.headers.get(self.header, "").strip()
        if not presented:
            raise HttpError(
                401, "missing_credentials", f"an API key is required in {self.header}",
                headers={"www-authenticate": f'ApiKey realm="{self.realm}"'},
            )  # fmt: skip
        caller = self._find(presented)
        if caller is None:
            raise HttpError(
                401, "invalid_api_key", "the API key is not valid",
                headers={"www-authenticate": f'ApiKey realm="{self.realm}", error="invalid_key"'},
            )  # fmt: skip
        principal = Principal(caller, self.source, {})
        if context is not None:
            context.principal = principal
        return principal

    def _find(self, presented: str) -> str | None:
        if self._lookup is not None:
            found = self._lookup(presented)
            return found if isinstance(found, str) and found else None
        import hmac

        digest = bytes.fromhex(hash_api_key(presented))
        found = None
        # Every stored key is compared, whatever matched before: the time taken does not
        # tell which key (or how much of one) matched.
        for caller, stored in self._digests:
            if hmac.compare_digest(digest, stored):
                found = caller
        return found
