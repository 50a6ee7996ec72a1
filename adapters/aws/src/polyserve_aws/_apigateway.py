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

from polyserve.app import error_response
from polyserve.errors import EventError, MalformedEventError
from polyserve.events import Headers, HttpRequest, QueryParams, decode_path, maker
from polyserve_aws._http import (
    NO_HEADERS,
    NO_QUERY,
    multi_pairs,
    pairs,
    request_body,
    response_body,
)
from polyserve_aws._wire import as_object, malformed, optional_text, text

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    Kind = Literal["rest", "http", "function_url"]
    from collections.abc import Mapping

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve.events import HttpResponse

__all__ = ["handle", "kind", "matches", "to_event", "to_native"]


# HttpRequest from all its fields in order: the fastest way to build the one per request.
_request = maker(HttpRequest)

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
    if raw.get("version") == "2.0" and ("rawPath" in raw or "routeKey" in raw):  # _is_v2
        return True
    context = raw.get("requestContext")
    return "httpMethod" in raw and isinstance(context, dict) and "elb" not in context


def kind(raw: dict[str, Any]) -> Kind:
    """Which service sent a recognised event: a REST API, an HTTP API or a Function URL."""
    if not _is_v2(raw):
        return "rest"
    context = raw.get("requestContext")
    domain = context.get("domainName") if isinstance(context, dict) else None
    return "function_url" if isinstance(domain, str) and ".lambda-url." in domain else "http"


def to_event(raw: dict[str, Any], context: Context) -> HttpRequest:
    """The ``HttpRequest`` in a recognised event.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type, or the
            body is not valid base64 (code ``invalid_base64``).
    """
    return _read(raw, context, _is_v2(raw))


def _what(raw: dict[str, Any]) -> str:
    return _WHAT[kind(raw)]


def _path(path: str, raw: dict[str, Any], is_v2: bool) -> str:
    """The request path: decoded here, unless an HTTP API decoded it already."""
    if "%" not in path:
        return path
    # An HTTP API's payload 1.0 event has a version, a REST API's has none.
    decoded_by_aws = kind(raw) == "http" if is_v2 else raw.get("version") == "1.0"
    # Decoding an HTTP API's path again would turn a "%41" the client sent as
    # "%2541" into "A".
    return path if decoded_by_aws else decode_path(path)


def _read(raw: dict[str, Any], context: Context, is_v2: bool) -> HttpRequest:
    try:
        return _v2_request(raw, context) if is_v2 else _v1_request(raw, context)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise malformed(_what(raw), exc) from None


def _all_text(mapping: dict[str, Any]) -> bool:
    # str.join takes only strings: a check of every value at C speed.
    try:
        "".join(mapping.values())
    except TypeError:
        return False
    return True


def _all_text_lists(values: Any) -> bool:
    # Every value a list of strings (a None item, which is an empty value, takes the
    # checked path).
    try:
        for value in values:
            if value.__class__ is not list:
                return False
            "".join(value)  # takes only strings
    except TypeError:
        return False
    return True


def _v1_request(raw: dict[str, Any], context: Context) -> HttpRequest:
    request_context: Any = raw.get("requestContext")
    headers = raw.get("multiValueHeaders") or raw.get("headers")
    is_multi = bool(raw.get("multiValueHeaders"))
    query = raw.get("multiValueQueryStringParameters") or raw.get("queryStringParameters")
    is_multi_query = bool(raw.get("multiValueQueryStringParameters"))
    method = raw.get("httpMethod")
    path = raw.get("path")
    body = raw.get("body")
    identity = request_context.get("identity") if request_context.__class__ is dict else None
    client = identity.get("sourceIp") if identity.__class__ is dict else None
    request_id = request_context.get("requestId") if request_context.__class__ is dict else None
    # One check for the well-formed event; _v1_checked says what is wrong with another.
    if (
        request_context.__class__ is dict
        and method.__class__ is str
        and path.__class__ is str
        and (client is None or client.__class__ is str)
        and (request_id is None or request_id.__class__ is str)
        and (
            headers is None
            or (
                headers.__class__ is dict
                and (_all_text_lists(headers.values()) if is_multi else _all_text(headers))
            )
        )
        and (
            query is None
            or (
                query.__class__ is dict
                and (_all_text_lists(query.values()) if is_multi_query else _all_text(query))
            )
        )
        and (body is None or (body.__class__ is str and raw.get("isBase64Encoded") is not True))
    ):
        return _request(
            method,
            path if "%" not in path else _path(path, raw, False),
            QueryParams.view(query, multi=is_multi_query) if query else NO_QUERY,
            Headers.view(headers, multi=is_multi) if headers else NO_HEADERS,
            _text_body(body, raw) if body else b"",
            {},
            client,
            request_id or context.invocation_id,
            raw,
        )
    return _v1_checked(raw, context, _WHAT["rest"])


def _text_body(body: str, raw: dict[str, Any]) -> bytes:
    try:
        return body.encode()
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON
        raise MalformedEventError(f"{_what(raw)} body is not valid Unicode") from None


def _v1_checked(raw: dict[str, Any], context: Context, what: str) -> HttpRequest:
    request_context = as_object(raw["requestContext"], what, "requestContext")
    multi_headers = raw.get("multiValueHeaders")
    if multi_headers:
        headers = multi_pairs(multi_headers, what, "multiValueHeaders")
    else:
        headers = pairs(raw.get("headers"), what, "headers")
    multi_query = raw.get("multiValueQueryStringParameters")
    if multi_query:
        query = multi_pairs(multi_query, what, "multiValueQueryStringParameters")
    else:
        query = pairs(raw.get("queryStringParameters"), what, "queryStringParameters")
    identity = request_context.get("identity")
    return HttpRequest(
        method=text(raw, "httpMethod", what),
        path=_path(text(raw, "path", what), raw, False),
        query=QueryParams(query) if query else NO_QUERY,
        headers=Headers(headers) if headers else NO_HEADERS,
        body=request_body(raw, what),
        client=optional_text(identity, "sourceIp", what) if isinstance(identity, dict) else None,
        request_id=optional_text(request_context, "requestId", what) or context.invocation_id,
        raw=raw,
    )


def _v2_request(raw: dict[str, Any], context: Context) -> HttpRequest:
    # The fields every HTTP API and Function URL request has, read by subscript (a
    # third the cost of .get); an event without one is read field by field instead.
    try:
        request_context = raw["requestContext"]
        http = request_context["http"]
        method = http["method"]
        client = http["sourceIp"]
        request_id = request_context["requestId"]
        path = raw["rawPath"]
        raw_query = raw["rawQueryString"]
        headers = raw["headers"]
    except (KeyError, TypeError):
        return _v2_checked(raw, context, _what(raw))
    body = raw.get("body")
    try:
        # Every header value and the body a str (join takes only strings), and the
        # body valid Unicode: checked at C speed, in one go.
        if headers.__class__ is dict:
            "".join(headers.values())
        body_bytes = body.encode() if body.__class__ is str else b""
    except (TypeError, UnicodeEncodeError):
        return _v2_checked(raw, context, _what(raw))
    # One check for the well-formed event; _v2_checked says what is wrong with another.
    if (
        method.__class__ is str
        and path.__class__ is str
        and raw_query.__class__ is str
        and client.__class__ is str
        and request_id.__class__ is str
        and headers.__class__ is dict
        and (body is None or (body.__class__ is str and raw.get("isBase64Encoded") is not True))
        and "cookies" not in raw
    ):
        return _request(
            method,
            path if "%" not in path else _path(path, raw, True),
            QueryParams.from_string(raw_query) if raw_query else NO_QUERY,
            # Payload 2.0 header names arrive lower-case.
            Headers.view(headers, normalized=True) if headers else NO_HEADERS,
            body_bytes,
            {},
            client,
            request_id or context.invocation_id,
            raw,
        )
    return _v2_checked(raw, context, _what(raw))


def _v2_checked(raw: dict[str, Any], context: Context, what: str) -> HttpRequest:
    request_context = as_object(raw.get("requestContext"), what, "requestContext")
    http = as_object(request_context.get("http"), what, "requestContext.http")
    headers = pairs(raw.get("headers"), what, "headers")
    cookies = raw.get("cookies")
    if cookies:
        if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
            raise MalformedEventError(f"{what} cookies must be a list of strings")
        headers.append(("cookie", "; ".join(cookies)))
    raw_query = optional_text(raw, "rawQueryString", what)
    return HttpRequest(
        method=text(http, "method", what),
        path=_path(text(raw, "rawPath", what), raw, True),
        query=QueryParams.from_string(raw_query) if raw_query else NO_QUERY,
        headers=Headers(headers) if headers else NO_HEADERS,
        body=request_body(raw, what),
        client=optional_text(http, "sourceIp", what),
        request_id=optional_text(request_context, "requestId", what) or context.invocation_id,
        raw=raw,
    )


def to_native(response: HttpResponse, raw: dict[str, Any]) -> dict[str, Any]:
    """The response document for the payload version of ``raw``."""
    return _render(response, is_v2=_is_v2(raw))


def _render(response: HttpResponse, *, is_v2: bool) -> dict[str, Any]:
    global _last_v2
    body, is_base64 = response_body(response)
    if is_v2:
        response_headers = response.headers
        last = _last_v2
        if response_headers is last[0]:
            headers, cookies = last[1], last[2]
        else:
            headers, cookies = _v2_headers(response_headers)
            _last_v2 = (response_headers, headers, cookies)  # one store: thread-safe
        if cookies:
            return {
                "statusCode": response.status, "headers": dict(headers), "cookies": list(cookies),
                "body": body, "isBase64Encoded": is_base64,
            }  # fmt: skip
        return {
            "statusCode": response.status, "headers": dict(headers), "body": body,
            "isBase64Encoded": is_base64,
        }  # fmt: skip
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        if name in multi:
            multi[name].append(value)
        elif name in single:
            multi[name] = [single.pop(name), value]
        else:
            single[name] = value
    return {
        "statusCode": response.status, "headers": single, "multiValueHeaders": multi,
        "body": body, "isBase64Encoded": is_base64,
    }  # fmt: skip


def _v2_headers(response_headers: Headers) -> tuple[dict[str, str], list[str]]:
    # Payload 2.0's headers: repeats joined with ", ", every Set-Cookie in cookies.
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in response_headers.multi_items():
        if name == "set-cookie":
            cookies.append(value)
        elif name in headers:
            headers[name] += ", " + value
        else:
            headers[name] = value
    return headers, cookies


# The last response headers rendered for payload 2.0, and what they rendered as:
# responses mostly share one Headers (every JSON body's), which cannot change. The
# response gets copies, since the runtime's caller owns it.
_last_v2: tuple[Headers | None, dict[str, str], list[str]] = (None, {}, [])


def handle(app: App, raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Any:
    """Answer the request; an unreadable event gets a 400 problem response, never an error."""
    is_v2 = raw.get("version") == "2.0" and ("rawPath" in raw or "routeKey" in raw)  # _is_v2
    try:
        request = _v2_request(raw, context) if is_v2 else _v1_request(raw, context)
    except (KeyError, TypeError, AttributeError, ValueError, EventError) as exc:
        problem = exc if isinstance(exc, EventError) else malformed(_what(raw), exc)
        return _render(error_response(problem, context), is_v2=is_v2)
    return _render(app.handle_http(request, context), is_v2=is_v2)
