"""Who is calling: the caller a platform, or a verifier the app chose, has identified.

``Context.principal`` is a ``Principal`` when the request carried an identity that
something trustworthy checked, and ``None`` otherwise. Adapters fill it from what the
platform verified before the function ran (API Gateway authorizers, App Service
authentication, IAP, Cloudflare Access, ...); ``polyserve.auth`` holds verifiers an
app can run itself (JWT bearer tokens, API keys).

Identities carried in request *headers* can be sent by any client when the platform
feature that sets them is off or bypassed, so adapters read them only when the app
says so (``identity_headers=``, checked by ``header_trust``), either as sent or after
a ``TokenVerifier`` has checked the signed assertion that comes with them.

Adapter-facing helpers live here too: ``header_trust`` (the option's check),
``verified_claims`` (a verifier's answer, or ``None``) and ``unverified_claims`` (the
payload of a JWT whose signature someone else checked).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from polyserve.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = [
    "HeaderTrust",
    "Principal",
    "TokenVerifier",
    "header_trust",
    "unverified_claims",
    "verified_claims",
]


def _no_claims() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one invocation, as identified by ``source``.

    ``id`` is the caller's stable identifier at that source (a token's ``sub``, an IAM
    ARN, an App Service user id); ``source`` names where it came from (``"aws.cognito"``,
    ``"azure.app_service"``, ``"jwt"``, ...); ``claims`` holds what the source said about
    the caller (token claims, authorizer context), read-only by convention.

    Two principals are equal when their ``source`` and ``id`` are: the claims of one
    caller change from token to token. ``claims`` is left out of ``repr`` so that a
    logged principal does not spill e-mail addresses and the like.
    """

    id: str
    source: str
    claims: Mapping[str, Any] = field(default_factory=_no_claims, compare=False, repr=False)


class TokenVerifier(Protocol):
    """Checks a signed token and returns its claims (``polyserve.auth.JwtVerifier`` is one).

    ``verify`` raises (a ``PolyserveError``, typically ``HttpError(401)``) when the token
    is not valid: bad signature, wrong issuer or audience, expired, malformed.
    """

    def verify(self, token: str) -> Mapping[str, Any]: ...


HeaderTrust = bool | TokenVerifier
"""How far an adapter trusts one identity header source: ``True`` takes the headers as
sent (only safe when the platform sets them on every request that can reach the
function), a ``TokenVerifier`` takes them only once it has verified the source's signed
assertion, ``False`` ignores them (the default)."""


def header_trust(
    options: Mapping[str, HeaderTrust] | None, known: Collection[str]
) -> dict[str, HeaderTrust]:
    """The checked ``identity_headers=`` option of an adapter entry point.

    Returns the sources the app opted into (``False`` entries dropped).

    Raises:
        ConfigurationError: a source is not in ``known``, or its value is neither a
            bool nor an object with a ``verify`` method.
    """
    trusted: dict[str, HeaderTrust] = {}
    for name, value in (options or {}).items():
        if name not in known:
            raise ConfigurationError(
                f"unknown identity header source {name!r}; known: {sorted(known)}"
            )
        if not isinstance(value, bool) and not callable(getattr(value, "verify", None)):
            raise ConfigurationError(
                f"identity_headers[{name!r}] must be True, False or a TokenVerifier, "
                f"got {type(value).__name__}"
            )
        if value is not False:
            trusted[name] = value
    return trusted


def unverified_claims(token: object) -> dict[str, Any] | None:
    """The payload of a compact JWT, **without checking its signature**; ``None`` if unreadable.

    For tokens whose signature the platform has already checked (or removed after
    checking it), and for the claims of a header source the app trusts as sent. Padded
    and unpadded base64url are both accepted. Never raises.
    """
    if not isinstance(token, str):
        return None
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 64 * 1024:
        return None
    segment = parts[1].rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def verified_claims(verifier: TokenVerifier, token: str, source: str) -> Mapping[str, Any] | None:
    """The claims of ``token`` if ``verifier`` accepts it, else ``None``.

    For adapters reading a header source the app trusts through a verifier: a token
    that fails is logged (the source and the reason's code, never the token) and
    gives no principal. Never raises.
    """
    try:
        claims = verifier.verify(token)
    except Exception as exc:
        import logging

        code = getattr(exc, "code", type(exc).__name__)
        logging.getLogger("polyserve").warning(
            "identity assertion rejected: source=%s code=%s", source, code
        )
        return None
    return claims if isinstance(claims, Mapping) else None
