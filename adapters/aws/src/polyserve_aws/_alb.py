"""Application Load Balancer requests to a Lambda target group.

Recognised by ``requestContext.elb``. A target group with multi-value headers enabled
sends ``multiValueHeaders``/``multiValueQueryStringParameters`` and must be answered with
``multiValueHeaders``; otherwise it sends and expects the single-value maps. The mode
of the request decides the mode of the response.

The load balancer passes the path and the query parameters as the client sent them,
percent-encoded; both are decoded here: the path by ``polyserve.events.decode_path``
(a malformed escape, an encoded slash or a path that is not UTF-8 is a 400
``invalid_path``), the query leniently (``+`` is a space, as in forms).
In single-value mode it keeps only the last value of a repeated header or query key.
The event names no client address and no request id: the client is the last entry of
``X-Forwarded-For`` (the address the load balancer saw), the request id is Lambda's.

A response in single-value mode can carry one value per header: repeated values are
joined with ``", "``, except ``Set-Cookie``, of which only the last is sent (enable
multi-value headers on the target group to send several cookies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from polyserve.adapter import response_body, text, translating
from polyserve.events import Headers, HttpRequest, QueryParams, decode_path
from polyserve_aws._http import multi_pairs, pairs, request_body

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve.events import HttpResponse

__all__ = ["is_http", "is_multi_value", "matches", "to_event", "to_native"]

is_http = True

_WHAT = "ALB event"


def matches(raw: dict[str, Any]) -> bool:
    """True for an event whose ``requestContext`` names an ``elb`` target group."""
    context = raw.get("requestContext")
    return isinstance(context, dict) and "elb" in context


def is_multi_value(raw: dict[str, Any]) -> bool:
    """True when the target group has multi-value headers enabled."""
    return "multiValueHeaders" in raw


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> HttpRequest:
    """The ``HttpRequest`` in an ALB event.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type, or the
            body is not valid base64 (code ``invalid_base64``).
    """
    with translating(_WHAT):
        if is_multi_value(raw):
            headers = multi_pairs(raw["multiValueHeaders"], _WHAT, "multiValueHeaders")
            query = multi_pairs(
                raw.get("multiValueQueryStringParameters"),
                _WHAT,
                "multiValueQueryStringParameters",
            )
        else:
            headers = pairs(raw.get("headers"), _WHAT, "headers")
            query = pairs(raw.get("queryStringParameters"), _WHAT, "queryStringParameters")
        client = None
        for name, value in headers:
            if name.lower() == "x-forwarded-for":
                client = value.rsplit(",", 1)[-1].strip() or None
        return HttpRequest(
            method=text(raw, "httpMethod", _WHAT),
            path=decode_path(text(raw, "path", _WHAT)),
            query=QueryParams([(unquote_plus(k), unquote_plus(v)) for k, v in query]),
            headers=Headers(headers),
            body=request_body(raw, _WHAT),
            client=client,
            request_id=context.invocation_id,
            raw=raw,
        )


def to_native(response: HttpResponse, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """The response document, in the header mode of the request ``raw``."""
    from http import HTTPStatus  # loaded already by the runtime; only the lookup costs

    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    body, is_base64 = response_body(response)
    out: dict[str, Any] = {
        "statusCode": response.status,
        "statusDescription": f"{response.status} {phrase}",
        "isBase64Encoded": is_base64,
        "body": body,
    }
    multi = response.headers.to_multi_dict()
    if is_multi_value(raw):
        out["multiValueHeaders"] = multi
        return out
    headers: dict[str, str] = {}
    for name, values in multi.items():
        if name == "set-cookie":
            if len(values) > 1:
                context.logger.warning(
                    "ALB single-value headers carry one Set-Cookie; the others were dropped",
                    dropped=len(values) - 1,
                )
            headers[name] = values[-1]
        else:
            headers[name] = ", ".join(values)
    out["headers"] = headers
    return out
