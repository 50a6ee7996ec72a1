"""``Context.principal`` on Lambda: the caller API Gateway, a Function URL or an ALB verified.

Read from the event when a handler first asks, in this order:

=====================  ==================================================  ==========
source                 where                                               trusted
=====================  ==================================================  ==========
``aws.cognito``        REST API Cognito user pool authorizer:              always
                       ``requestContext.authorizer.claims`` (id: ``sub``)
``aws.jwt``            HTTP API JWT authorizer:                            always
                       ``requestContext.authorizer.jwt.claims`` (``sub``)
``aws.lambda``         Lambda authorizer: REST ``authorizer.principalId``  always
                       (claims: the authorizer's context), HTTP API
                       ``authorizer.lambda`` (id: its ``principalId`` or
                       ``sub`` key)
``aws.iam``            IAM authorization: REST ``requestContext.identity``, always
                       HTTP API and Function URL ``authorizer.iam`` (id:
                       the Cognito identity id, else the caller's ARN)
``aws.lattice``        VPC Lattice (v2) with an ``AWS_IAM`` auth policy:   always
                       ``requestContext.identity`` (id: ``principal``,
                       the caller's ARN; claims: the identity fields)
``aws.alb_oidc``       ALB ``authenticate-oidc``/``authenticate-cognito``   opt-in
                       actions: ``x-amzn-oidc-identity`` and
                       ``x-amzn-oidc-data`` headers
=====================  ==================================================  ==========

``requestContext`` is written by API Gateway, VPC Lattice and Lambda, never by the
client, so the first five are read whenever present. The ALB headers are only as good as the listener
rules: a rule without an authenticate action passes whatever headers the client sent.
They are read only with ``identity_headers={"alb_oidc": True}`` (every rule that
reaches the function authenticates), or with a ``TokenVerifier`` that checks the signed
``x-amzn-oidc-data`` assertion.

Anything unreadable (a field of the wrong type, an empty id) gives no principal;
reading never raises.
"""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from polyserve.identity import HeaderTrust, Principal

__all__ = ["HEADER_SOURCES", "Identity"]

HEADER_SOURCES = ("alb_oidc",)
"""The header sources ``identity_headers=`` may name on AWS."""


class Identity:
    """The principal reader of one Lambda handler: ``Identity(trust)(event)``."""

    __slots__ = ("_alb",)

    def __init__(self, trust: Mapping[str, HeaderTrust]) -> None:
        self._alb = trust.get("alb_oidc", False)

    def __call__(self, event: Any) -> Principal | None:
        if event.__class__ is not dict:
            return None
        request_context = event.get("requestContext")
        if request_context.__class__ is not dict:
            return None
        if "elb" in request_context:
            return _alb(event, self._alb) if self._alb is not False else None
        authorizer = request_context.get("authorizer")
        if authorizer.__class__ is dict:
            found = _authorizer(authorizer)
            if found is not None:
                return found
        identity = request_context.get("identity")
        if identity.__class__ is dict:
            if "serviceNetworkArn" in request_context:  # VPC Lattice, after its auth policy
                if identity.get("type") != "AWS_IAM":
                    return None
                return _principal(identity.get("principal"), "aws.lattice", identity)
            return _iam(identity, "cognitoIdentityId", "userArn")
        return None


def _principal(id: Any, source: str, claims: Any) -> Principal | None:
    if id.__class__ is not str or not id:
        return None
    from polyserve.identity import Principal

    return Principal(id, source, claims if claims.__class__ is dict else {})


def _authorizer(authorizer: dict[str, Any]) -> Principal | None:
    jwt = authorizer.get("jwt")
    if jwt.__class__ is dict:
        claims = jwt.get("claims")
        if claims.__class__ is dict:
            return _principal(claims.get("sub"), "aws.jwt", claims)
        return None
    claims = authorizer.get("claims")
    if claims.__class__ is dict:
        return _principal(claims.get("sub"), "aws.cognito", claims)
    lambda_context = authorizer.get("lambda")
    if lambda_context.__class__ is dict:
        id = lambda_context.get("principalId", lambda_context.get("sub"))
        return _principal(id, "aws.lambda", lambda_context)
    iam = authorizer.get("iam")
    if iam.__class__ is dict:
        return _iam(iam, "cognitoIdentity", "userArn")
    principal_id = authorizer.get("principalId")
    if principal_id is not None:
        context = {
            k: v for k, v in authorizer.items() if k not in ("principalId", "integrationLatency")
        }
        return _principal(principal_id, "aws.lambda", context)
    return None


def _iam(fields: dict[str, Any], cognito_key: str, arn_key: str) -> Principal | None:
    # A Cognito identity pool's callers share one role ARN: the identity id tells them apart.
    cognito = fields.get(cognito_key)
    if cognito.__class__ is dict:
        cognito = cognito.get("identityId")
    if cognito.__class__ is str and cognito:
        return _principal(cognito, "aws.iam", fields)
    return _principal(fields.get(arn_key), "aws.iam", fields)


def _alb(event: dict[str, Any], trust: HeaderTrust) -> Principal | None:
    identity = data = None
    multi = event.get("multiValueHeaders")
    headers = multi if multi.__class__ is dict else event.get("headers")
    if headers.__class__ is not dict:
        return None
    for name, value in headers.items():
        if value.__class__ is list:
            value = value[-1] if value else None
        if value.__class__ is not str or name.__class__ is not str:
            continue
        lowered = name.lower()
        if lowered == "x-amzn-oidc-identity":
            identity = value
        elif lowered == "x-amzn-oidc-data":
            data = value
    if trust is True:
        from polyserve.identity import unverified_claims

        claims = unverified_claims(data) if data is not None else None
        if identity is None and claims is not None:
            identity = claims.get("sub")
        return _principal(identity, "aws.alb_oidc", claims)
    if data is None or isinstance(trust, bool):
        return None
    from polyserve.identity import verified_claims

    verified = verified_claims(trust, data, "aws.alb_oidc")
    if verified is None:
        return None
    return _principal(verified.get("sub"), "aws.alb_oidc", dict(verified))
