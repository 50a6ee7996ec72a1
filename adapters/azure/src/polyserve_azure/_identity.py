"""``Context.principal`` on Azure Functions: the caller App Service authentication signed in.

App Service authentication ("Easy Auth", also Static Web Apps) passes the caller in
request headers:

- ``x-ms-client-principal``: base64-encoded JSON, either App Service's
  ``{"auth_typ", "claims": [{"typ", "val"}], "name_typ", "role_typ"}`` or Static Web
  Apps' ``{"identityProvider", "userId", "userDetails", "userRoles"}``;
- ``x-ms-client-principal-id``, ``-name`` and ``-idp``: the caller's id, display name
  and identity provider.

The platform removes client-sent copies of these headers only while the feature is on:
with it off, any client can send them. They are read (source ``azure.app_service``)
only with ``function_app(..., identity_headers={"app_service": True})``. Given a
``TokenVerifier`` instead, the adapter reads the caller from the Microsoft Entra ID
token App Service forwards in ``x-ms-token-aad-id-token`` (token store on), once the
verifier accepts it.

The principal's id is ``x-ms-client-principal-id`` (else the decoded principal's
object id, name identifier or ``userId``); its claims are the decoded claims, by type
(a type that repeats, such as ``roles``, maps to a list), plus ``name`` and ``idp``
from their headers. A header that cannot be decoded (bad base64, bad JSON, wrong
types) adds no claims; reading never raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.events import Headers
    from polyserve.identity import HeaderTrust, Principal

__all__ = ["HEADER_SOURCES", "Identity", "client_principal_claims"]

HEADER_SOURCES = ("app_service",)
"""The header sources ``identity_headers=`` may name on Azure."""

SOURCE = "azure.app_service"

# Claim types that carry the caller's id, most specific first.
_ID_CLAIMS = (
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "sub",
)
_MAX_HEADER = 64 * 1024


class Identity:
    """The principal reader of one function app: ``Identity(trust)(request.headers)``."""

    __slots__ = ("_trust",)

    def __init__(self, trust: Mapping[str, HeaderTrust]) -> None:
        self._trust = trust.get("app_service", False)

    def __call__(self, headers: Headers) -> Principal | None:
        trust = self._trust
        if trust is False:
            return None
        from polyserve.identity import Principal, verified_claims

        if trust is not True:
            token = headers.get("x-ms-token-aad-id-token")
            if not token:
                return None
            verified = verified_claims(trust, token, SOURCE)
            id = None if verified is None else verified.get("oid", verified.get("sub"))
            if not isinstance(id, str) or not id or verified is None:
                return None
            return Principal(id, SOURCE, dict(verified))
        claims = client_principal_claims(headers.get("x-ms-client-principal", ""))
        for name in ("name", "idp"):
            value = headers.get(f"x-ms-client-principal-{name}")
            if value:
                claims.setdefault(name, value)
        id = headers.get("x-ms-client-principal-id") or next(
            (claims[t] for t in (*_ID_CLAIMS, "userId") if isinstance(claims.get(t), str)), None
        )
        return Principal(id, SOURCE, claims) if id else None


def client_principal_claims(header: str) -> dict[str, Any]:
    """The claims in an ``x-ms-client-principal`` header; ``{}`` when it cannot be read."""
    if not header or len(header) > _MAX_HEADER:
        return {}
    import base64
    import binascii
    import json

    try:
        decoded = json.loads(base64.b64decode(header + "=" * (-len(header) % 4), validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return {}
    if not isinstance(decoded, dict):
        return {}
    listed = decoded.get("claims")
    if not isinstance(listed, list):
        # Static Web Apps: the fields themselves, where they have the expected types.
        return {
            k: v
            for k, v in decoded.items()
            if isinstance(k, str) and (isinstance(v, str) or _is_strings(v))
        }
    claims: dict[str, Any] = {}
    for item in listed:
        if not isinstance(item, dict):
            continue
        typ, val = item.get("typ"), item.get("val")
        if not isinstance(typ, str) or not isinstance(val, str):
            continue
        if typ not in claims:
            claims[typ] = val
        elif isinstance(claims[typ], list):
            claims[typ].append(val)
        else:
            claims[typ] = [claims[typ], val]
    return claims


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
