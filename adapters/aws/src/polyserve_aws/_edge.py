"""Lambda@Edge: CloudFront viewer and origin requests and responses.

Recognised by ``Records[0].cf``. The event type is ``cf.config.eventType``:
``viewer-request``, ``origin-request``, ``viewer-response`` or ``origin-response``.

Every one becomes the ``HttpRequest`` of ``cf.request``: ``method``, ``uri`` decoded
by ``polyserve.events.decode_path`` (a malformed escape, an encoded slash or a path
that is not UTF-8 is a 400 ``invalid_path``), ``querystring`` parsed, each header of
CloudFront's ``{"name": [{"key": "Name", "value": "v"}]}`` map in order,
``clientIp`` as the client and ``cf.config.requestId`` as the request id. The body
is there when the trigger includes it (``body.data``, text or base64 by
``body.encoding``); a body CloudFront cut (``inputTruncated``) is a 413, since the
app would otherwise see part of it as the whole. For response events, the origin's
response is in ``raw["Records"][0]["cf"]["response"]``.

The app's ``HttpResponse`` is answered in CloudFront's form: ``status`` (a string),
``statusDescription``, ``headers`` in the same map form, and ``body`` with
``bodyEncoding`` (``text`` or ``base64``). For a request event this is a generated
response: CloudFront answers the viewer with it, without going to the cache or the
origin. For a response event it replaces the origin's response, except that a
viewer response cannot carry a new body (CloudFront rejects one), so its body is
left out. A route that returns ``polyserve_aws.edge.forward()`` lets CloudFront go
on: the function returns ``cf.request`` (request events) or ``cf.response``
(response events) as it came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import as_object, decode_base64, response_body, text, translating
from polyserve.errors import MalformedEventError, PayloadTooLargeError
from polyserve.events import Headers, HttpRequest, QueryParams, decode_path
from polyserve_aws._wire import first_record
from polyserve_aws.edge import FORWARD_HEADER as _FORWARD

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve.events import HttpResponse

__all__ = ["EVENT_TYPES", "event_type", "is_http", "matches", "to_event", "to_native"]

is_http = True

_WHAT = "Lambda@Edge event"

EVENT_TYPES = frozenset({"viewer-request", "origin-request", "viewer-response", "origin-response"})
"""The CloudFront events a Lambda@Edge function can be associated with."""


def matches(raw: dict[str, Any]) -> bool:
    """True for a Lambda@Edge event: a record with a ``cf`` object."""
    record = first_record(raw)
    return record is not None and isinstance(record.get("cf"), dict)


def event_type(raw: dict[str, Any]) -> str:
    """``cf.config.eventType`` of a recognised event (``""`` when it cannot be read)."""
    try:
        kind = raw["Records"][0]["cf"]["config"]["eventType"]
    except (KeyError, IndexError, TypeError):
        return ""
    return kind if isinstance(kind, str) else ""


def _headers(value: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, entries in as_object(value or {}, _WHAT, "headers").items():
        if not isinstance(entries, list):
            raise MalformedEventError(f"{_WHAT} header {name!r} must be a list")
        for entry in entries:
            value = as_object(entry, _WHAT, f"header {name!r}").get("value")
            if not isinstance(value, str):
                raise MalformedEventError(f"{_WHAT} header {name!r} value must be a string")
            out.append((name, value))
    return out


def _body(request: dict[str, Any]) -> bytes:
    body = request.get("body")
    if body is None:
        return b""
    body = as_object(body, _WHAT, "body")
    if body.get("inputTruncated") is True:
        raise PayloadTooLargeError("the request body was cut by CloudFront")
    data = body.get("data") or ""
    if body.get("encoding") == "base64":
        return decode_base64(data, f"{_WHAT} body")
    if not isinstance(data, str):
        raise MalformedEventError(f"{_WHAT} body data must be a string")
    return data.encode()


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> HttpRequest:
    """The ``HttpRequest`` in ``cf.request``.

    Raises:
        MalformedEventError: a field is missing or has the wrong type, an unknown
            event type, or a body that is not valid base64: answered with a 400.
        PayloadTooLargeError: CloudFront cut the body: answered with a 413.
    """
    with translating(_WHAT):
        cf = as_object(raw["Records"][0]["cf"], _WHAT, "cf")
        config = as_object(cf.get("config"), _WHAT, "config")
        kind = text(config, "eventType", _WHAT)
        if kind not in EVENT_TYPES:
            raise MalformedEventError(f"{_WHAT} has an unknown eventType {kind[:40]!r}")
        request = as_object(cf.get("request"), _WHAT, "request")
        query = request.get("querystring") or ""
        if not isinstance(query, str):
            raise MalformedEventError(f"{_WHAT} querystring must be a string")
        return HttpRequest(
            method=text(request, "method", _WHAT),
            path=decode_path(text(request, "uri", _WHAT)),
            query=QueryParams.from_string(query),
            headers=Headers(_headers(request.get("headers"))),
            body=_body(request),
            client=request.get("clientIp") if isinstance(request.get("clientIp"), str) else None,
            request_id=config.get("requestId") or context.invocation_id,
            raw=raw,
        )


def to_native(response: HttpResponse, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """The response in CloudFront's form (see the module docstring), or the event's own
    request or response when the app answered with ``polyserve_aws.edge.forward()``."""
    from http import HTTPStatus

    if response.status == 204 and response.headers.get(_FORWARD) is not None:
        cf = raw["Records"][0]["cf"]
        forwarded: dict[str, Any] = cf["response" if "response" in cf else "request"]
        return forwarded

    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    headers: dict[str, list[dict[str, str]]] = {}
    for name, value in response.headers.multi_items():
        headers.setdefault(name.lower(), []).append({"key": _title(name), "value": value})
    out: dict[str, Any] = {
        "status": str(response.status),
        "statusDescription": phrase,
        "headers": headers,
    }
    if event_type(raw) == "viewer-response":
        if response.body:
            context.logger.warning(
                "a viewer response cannot change the body; it was left out",
                size=len(response.body),
            )
        return out
    body, is_base64 = response_body(response)
    out["body"] = body
    out["bodyEncoding"] = "base64" if is_base64 else "text"
    return out


def _title(name: str) -> str:
    # CloudFront wants the header's display name beside the lower-case key.
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
