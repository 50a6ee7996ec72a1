"""API Gateway REST APIs (payload 1.0), HTTP APIs (payload 2.0) and Lambda Function URLs.

Recognised by shape:

* payload 2.0 (HTTP API, Function URL): ``version == "2.0"`` with ``rawPath`` or
  ``routeKey``. A Function URL is told apart by its ``requestContext.domainName``
  (``<url-id>.lambda-url.<region>.on.aws``); both are read and answered alike.
* payload 1.0 (REST API, HTTP API with payload 1.0): ``httpMethod`` and a
  ``requestContext`` without ``elb`` (that one is an ALB's).

Authorizer events (``methodArn``/``routeArn``) are not requests and are not recognised.

Requests: REST APIs and Function URLs pass the path as the client encoded it, and it
is decoded by ``polyserve.events.decode_path`` (a malformed escape, an encoded slash or
a path that is not UTF-8 is a 400 ``invalid_path``). HTTP APIs decode the path
themselves before the event is built, in both payload versions (an HTTP API's payload
1.0 event says ``"version": "1.0"``; a REST API's has no version), so theirs is taken
as it is. Payload 1.0 prefers ``multiValueHeaders`` and
``multiValueQueryStringParameters`` over the single-value maps. Payload 2.0 parses
``rawQueryString`` itself; its headers arrive with repeated values already joined by
commas (AWS does that), and its ``cookies`` array becomes one ``cookie`` header.

Responses: payload 1.0 gets ``headers`` for single values and ``multiValueHeaders`` for
repeated ones (several ``Set-Cookie``); payload 2.0 gets repeated values joined with
``", "`` and every ``Set-Cookie`` in ``cookies``. Bodies that are not text are base64.
"""

from __future__ import annotations

from polyserve.adapter import as_object, malformed, optional_text, response_body, text
from polyserve.errors import MalformedEventError, PolyserveError
from polyserve.events import Headers, HttpRequest, QueryParams, decode_path
from polyserve_aws._http import request_body

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Literal

    from polyserve.context import Context
    from polyserve.events import HttpResponse

    Kind = Literal["rest", "http", "function_url"]

__all__ = ["is_http", "kind", "matches", "to_event", "to_native"]

is_http = True

# Immutable, so one empty map serves every request without headers or a query.
_NO_QUERY = QueryParams()
_NO_HEADERS = Headers()

_WHAT: dict[Kind, str] = {
    "rest": "API Gateway REST event",
    "http": "API Gateway HTTP API event",
    "function_url": "Lambda Function URL event",
}


def _is_v2(raw: dict[str, Any]) -> bool:
    return raw.get("version") == "2.0" and ("rawPath" in raw or "routeKey" in raw)


def matches(raw: dict[str, Any]) -> bool:
    """True for a payload 1.0 or 2.0 request event (not an authorizer event)."""
    if "methodArn" in raw or "routeArn" in raw:
        return False
    if _is_v2(raw):
        return True
    context = raw.get("requestContext")
    return "httpMethod" in raw and isinstance(context, dict) and "elb" not in context


def kind(raw: dict[str, Any]) -> Kind:
    """Which service sent a recognised event: a REST API, an HTTP API or a Function URL."""
    return _v2_kind(raw) if _is_v2(raw) else "rest"


def _v2_kind(raw: dict[str, Any]) -> Kind:
    # A Function URL's domain is <url-id>.lambda-url.<region>.on.aws.
    context = raw.get("requestContext")
    domain = context.get("domainName") if isinstance(context, dict) else None
    return "function_url" if isinstance(domain, str) and ".lambda-url." in domain else "http"


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> HttpRequest:
    """The ``HttpRequest`` in a recognised event.

    Header and query values are checked when the handler first reads them.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type, or the
            body is not valid base64 (code ``invalid_base64``).
    """
    is_v2 = _is_v2(raw)
    what = _WHAT[_v2_kind(raw)] if is_v2 else _WHAT["rest"]
    # A plain try rather than ``with translating(what)``: the same translation, at no
    # cost when nothing is raised (a with-statement costs 5% of a small GET).
    try:
        if is_v2:
            return _v2_request(raw, context, what)
        return _v1_request(raw, context, what)
    except PolyserveError:
        raise
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise malformed(what, exc) from None


def _path(path: str, raw: dict[str, Any]) -> str:
    """The request path: decoded here, unless an HTTP API decoded it already."""
    if "%" not in path:
        return path
    # An HTTP API's payload 1.0 event has a version, a REST API's has none. Decoding
    # an HTTP API's path again would turn a "%41" the client sent as "%2541" into "A".
    decoded_by_aws = kind(raw) == "http" if _is_v2(raw) else raw.get("version") == "1.0"
    return path if decoded_by_aws else decode_path(path)


def _map(raw: dict[str, Any], key: str, what: str) -> dict[str, Any] | None:
    value = raw.get(key)
    if not value:
        return None
    return as_object(value, what, key)


def _v1_request(raw: dict[str, Any], context: Context, what: str) -> HttpRequest:
    request_context = as_object(raw.get("requestContext"), what, "requestContext")
    identity = request_context.get("identity")
    multi_headers = _map(raw, "multiValueHeaders", what)
    headers = multi_headers or _map(raw, "headers", what)
    multi_query = _map(raw, "multiValueQueryStringParameters", what)
    query = multi_query or _map(raw, "queryStringParameters", what)
    return HttpRequest(
        method=text(raw, "httpMethod", what),
        path=_path(text(raw, "path", what), raw),
        query=QueryParams.view(query, multi=multi_query is not None) if query else _NO_QUERY,
        headers=Headers.view(headers, multi=multi_headers is not None) if headers else _NO_HEADERS,
        body=request_body(raw, what),
        client=optional_text(identity, "sourceIp", what) if isinstance(identity, dict) else None,
        request_id=optional_text(request_context, "requestId", what) or context.invocation_id,
        raw=raw,
    )


def _v2_request(raw: dict[str, Any], context: Context, what: str) -> HttpRequest:
    request_context = as_object(raw.get("requestContext"), what, "requestContext")
    http = as_object(request_context.get("http"), what, "requestContext.http")
    headers = _map(raw, "headers", what)
    cookies = raw.get("cookies")
    if cookies:
        try:
            # str.join takes only strings: it checks the items.
            cookie = "; ".join(cookies) if isinstance(cookies, list) else None
        except TypeError:
            cookie = None
        if cookie is None:
            raise MalformedEventError(f"{what} cookies must be a list of strings")
        # Payload 2.0 moves the Cookie header into ``cookies``; it goes back as one header
        # (the map is copied in C; its values are still read only when first used).
        header_map = Headers.view({**(headers or {}), "cookie": cookie}, normalized=True)
    else:
        # Payload 2.0 header names arrive lower-case.
        header_map = Headers.view(headers, normalized=True) if headers else _NO_HEADERS
    raw_query = optional_text(raw, "rawQueryString", what)
    return HttpRequest(
        method=text(http, "method", what),
        path=_path(text(raw, "rawPath", what), raw),
        query=QueryParams.from_string(raw_query) if raw_query else _NO_QUERY,
        headers=header_map,
        body=request_body(raw, what),
        client=optional_text(http, "sourceIp", what),
        request_id=optional_text(request_context, "requestId", what) or context.invocation_id,
        raw=raw,
    )


def to_native(response: HttpResponse, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """The response document for the payload version of ``raw``.

    Payload 1.0 gets ``headers`` for single values and ``multiValueHeaders`` for
    repeated ones; payload 2.0 gets repeated values joined with ``", "`` and every
    ``Set-Cookie`` in ``cookies``.
    """
    body, is_base64 = response_body(response)
    out: dict[str, Any] = {"statusCode": response.status}
    if _is_v2(raw):
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in response.headers.multi_items():
            if name == "set-cookie":
                cookies.append(value)
            elif name in headers:
                headers[name] += ", " + value
            else:
                headers[name] = value
        out["headers"] = headers
        if cookies:
            out["cookies"] = cookies
    else:
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in response.headers.multi_items():
            if name in multi:
                multi[name].append(value)
            elif name in single:
                multi[name] = [single.pop(name), value]
            else:
                single[name] = value
        out["headers"] = single
        out["multiValueHeaders"] = multi
    out["body"] = body
    out["isBase64Encoded"] = is_base64
    return out
