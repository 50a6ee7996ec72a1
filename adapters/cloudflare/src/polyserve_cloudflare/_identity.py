"""``Context.principal`` on Cloudflare Workers: the caller Cloudflare Access let through.

Access puts its signed application token in ``Cf-Access-Jwt-Assertion`` (and the
user's address in ``Cf-Access-Authenticated-User-Email``). A request that reaches the
Worker another way (a route or hostname Access does not cover) can carry forged
copies, and Cloudflare's advice is to validate the token, so the adapter reads them
(source ``cloudflare.access``) only with ``entrypoint(app, identity_headers=...)``:

- ``{"access": verifier}``: a ``TokenVerifier`` for the team's keys (issuer
  ``https://<team>.cloudflareaccess.com``, the application's AUD tag) checks the
  token; the id is its ``sub`` (``common_name`` for a service token).
- ``{"access": True}``: the token's claims are taken as sent, for Workers that Access
  covers on every route.

Anything unreadable gives no principal; reading never raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.events import Headers
    from polyserve.identity import HeaderTrust, Principal

__all__ = ["HEADER_SOURCES", "Identity"]

HEADER_SOURCES = ("access",)
"""The header sources ``identity_headers=`` may name on Cloudflare."""

SOURCE = "cloudflare.access"


class Identity:
    """The principal reader of one Worker: ``Identity(trust)(request.headers)``."""

    __slots__ = ("_trust",)

    def __init__(self, trust: Mapping[str, HeaderTrust]) -> None:
        self._trust = trust.get("access", False)

    def __call__(self, headers: Headers) -> Principal | None:
        trust = self._trust
        if trust is False:
            return None
        from polyserve.identity import Principal, unverified_claims, verified_claims

        assertion = headers.get("cf-access-jwt-assertion")
        email = headers.get("cf-access-authenticated-user-email")
        claims: dict[str, Any] | None
        if trust is True:
            claims = (unverified_claims(assertion) if assertion else None) or {}
            if email:
                claims.setdefault("email", email)
        else:
            verified = verified_claims(trust, assertion, SOURCE) if assertion else None
            claims = None if verified is None else dict(verified)
        if not claims:
            return None
        # A user's token names them in sub; a service token's sub is empty.
        id = next((claims[k] for k in ("sub", "common_name") if _text(claims.get(k))), None)
        if id is None and trust is True:
            id = email or None
        return Principal(id, SOURCE, claims) if id else None


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value)
