"""``Context.principal`` on Cloud Functions and Cloud Run: callers IAP or IAM let through.

Both arrive in request headers that a client can also send when the feature is off or
bypassed, so the adapter reads them only when the app opts in with
``http(app, identity_headers={...})``:

``"iap"`` (source ``gcp.iap``)
    Identity-Aware Proxy. ``True`` takes ``x-goog-authenticated-user-id`` as the id
    and ``x-goog-authenticated-user-email`` (with the claims of the unverified
    ``x-goog-iap-jwt-assertion``) as claims: safe only when every path to the function
    goes through IAP. Google's own advice is to verify the assertion instead: give a
    ``TokenVerifier`` for IAP's keys (issuer ``https://cloud.google.com/iap``, your
    backend's audience), and the id is the verified token's ``sub``.

``"iam"`` (source ``gcp.iam``)
    A service that requires authentication (no ``allUsers`` invoker). Cloud Run checks
    the caller's Google-signed ID token, from ``X-Serverless-Authorization`` if sent,
    else from ``Authorization``, then forwards it with its signature replaced by
    ``SIGNATURE_REMOVED_BY_GOOGLE``. Only ``True`` is accepted (the signature is gone,
    so nothing is left to verify); only a token carrying that marker is read, and the
    id is its ``sub`` (claims: ``email`` and the rest of the token).

Anything unreadable gives no principal; reading never raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.events import Headers
    from polyserve.identity import HeaderTrust, Principal

__all__ = ["HEADER_SOURCES", "Identity"]

HEADER_SOURCES = ("iap", "iam")
"""The header sources ``identity_headers=`` may name on Google Cloud."""

_REMOVED_SIGNATURE = "SIGNATURE_REMOVED_BY_GOOGLE"


class Identity:
    """The principal reader of one HTTP function: ``Identity(trust)(request.headers)``.

    Raises:
        ConfigurationError: ``"iam"`` is given a verifier (Cloud Run removed the signature).
    """

    __slots__ = ("_iam", "_iap")

    def __init__(self, trust: Mapping[str, HeaderTrust]) -> None:
        self._iap = trust.get("iap", False)
        self._iam = trust.get("iam", False)
        if not isinstance(self._iam, bool):
            raise ConfigurationError(
                "identity_headers['iam'] must be True: Cloud Run removes the token's "
                "signature after checking it, so there is nothing left to verify"
            )

    def __call__(self, headers: Headers) -> Principal | None:
        if self._iap is not False:
            found = self._from_iap(headers)
            if found is not None:
                return found
        if self._iam:
            return _from_iam(headers)
        return None

    def _from_iap(self, headers: Headers) -> Principal | None:
        from polyserve.identity import Principal, unverified_claims, verified_claims

        assertion = headers.get("x-goog-iap-jwt-assertion")
        trust = self._iap
        if trust is True:
            id = headers.get("x-goog-authenticated-user-id")
            if not id:
                return None
            claims = (unverified_claims(assertion) if assertion else None) or {}
            email = headers.get("x-goog-authenticated-user-email")
            if email:
                claims.setdefault("email", email)
            return Principal(id, "gcp.iap", claims)
        if not assertion or isinstance(trust, bool):
            return None
        verified = verified_claims(trust, assertion, "gcp.iap")
        sub = None if verified is None else verified.get("sub")
        if not isinstance(sub, str) or not sub or verified is None:
            return None
        return Principal(sub, "gcp.iap", dict(verified))


def _from_iam(headers: Headers) -> Principal | None:
    from polyserve.identity import Principal, unverified_claims

    # Cloud Run authenticates with X-Serverless-Authorization when it is sent, and then
    # leaves Authorization to the app: that one was not checked.
    value = headers.get("x-serverless-authorization") or headers.get("authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.endswith("." + _REMOVED_SIGNATURE):
        return None
    claims = unverified_claims(token)
    sub = None if claims is None else claims.get("sub")
    if not isinstance(sub, str) or not sub or claims is None:
        return None
    return Principal(sub, "gcp.iam", claims)
