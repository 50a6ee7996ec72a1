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
left out. Headers CloudFront keeps to itself, and those it makes read-only for the
event (``Content-Length``, which a mounted ASGI app sets, among them), are left out
of a generated response: CloudFront would refuse the whole answer with a 502.

A route that returns ``polyserve_aws.edge.forward()`` lets CloudFront go on: the
function returns ``cf.request`` (request events) or ``cf.response`` (response
events) as it came, or with the changes ``forward`` names (see ``polyserve_aws.edge``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import as_object, decode_base64, problem, response_body, text, translating
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

# Headers CloudFront does not show edge functions and refuses from them (a 502).
_DISALLOWED = frozenset({
    "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "trailer", "upgrade", "x-cache", "x-forwarded-proto", "x-real-ip",
})  # fmt: skip
_DISALLOWED_PREFIXES = ("x-accel-", "x-amz-cf-", "x-edge-")
# Headers an edge function may read but not add, change or remove, per event.
_READ_ONLY = {
    "viewer-request": frozenset({"content-length", "host", "transfer-encoding", "via"}),
    "origin-request": frozenset(
        {
            "accept-encoding",
            "content-length",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "range",
            "transfer-encoding",
            "via",
        }
    ),
    "origin-response": frozenset({"transfer-encoding", "via"}),
    "viewer-response": frozenset(
        {"content-encoding", "content-length", "transfer-encoding", "warning", "via"}
    ),
}
# Framing that CloudFront sets itself: left out of a generated response without a word.
_FRAMING = frozenset({"content-length", "transfer-encoding"})
# Characters kept as they are when a path becomes CloudFront's uri (RFC 3986 pchar and "/").
_URI_SAFE = "/:@!$&'()*+,;=-._~"


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

    kind = event_type(raw)
    marker = response.headers.get(_FORWARD) if response.status == 204 else None
    if marker is not None:
        try:
            return _forwarded(raw, kind, marker, response)
        except _Refused as exc:
            context.logger.error("Lambda@Edge forward refused", event_type=kind, reason=str(exc))
            response = problem(500, "internal_error", "Internal Server Error", context)

    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    headers: dict[str, list[dict[str, str]]] = {}
    dropped: list[str] = []
    locked = _READ_ONLY.get(kind, _FRAMING)
    for name, value in response.headers.multi_items():
        key = name.lower()
        if _off_limits(key, locked):
            if key not in _FRAMING and key not in dropped:
                dropped.append(key)
            continue
        headers.setdefault(key, []).append({"key": _title(name), "value": value})
    if dropped:
        context.logger.warning(
            "headers CloudFront does not let an edge function send were left out",
            event_type=kind, headers=dropped,
        )  # fmt: skip
    out: dict[str, Any] = {
        "status": str(response.status),
        "statusDescription": phrase,
        "headers": headers,
    }
    if kind == "viewer-response":
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


class _Refused(Exception):
    """A ``forward()`` CloudFront would refuse for this event."""


def _off_limits(name: str, locked: frozenset[str]) -> bool:
    # A lower-case header name that an edge function may not send for the event.
    return name in _DISALLOWED or name in locked or name.startswith(_DISALLOWED_PREFIXES)


def _forwarded(
    raw: dict[str, Any], kind: str, marker: str, response: HttpResponse
) -> dict[str, Any]:
    """``cf.request`` or ``cf.response`` with the changes of a ``forward()``'s ``marker``.

    Raises:
        _Refused: a change CloudFront does not allow for this event.
    """
    cf = raw["Records"][0]["cf"]
    is_response = kind.endswith("-response")
    target: dict[str, Any] = cf["response" if is_response else "request"]
    if marker == "1":
        return target
    import json

    changes: dict[str, Any] = json.loads(marker)
    forwarded = dict(target)  # the event itself is left as it came
    if "path" in changes or "query" in changes:
        if is_response:
            raise _Refused("a response event cannot change the request's path or query")
        if "path" in changes:
            from urllib.parse import quote

            forwarded["uri"] = quote(changes["path"], safe=_URI_SAFE)
        if "query" in changes:
            forwarded["querystring"] = changes["query"]
    to_set: list[str] = changes.get("set", [])
    to_remove: list[str] = changes.get("remove", [])
    if to_set or to_remove:
        locked = _READ_ONLY.get(kind, _FRAMING)
        for name in (*to_set, *to_remove):
            if _off_limits(name, locked):
                raise _Refused(f"CloudFront does not let a {kind} function change {name!r}")
        headers = dict(forwarded.get("headers") or {})
        for name in to_remove:
            headers.pop(name, None)
        for name in to_set:
            headers[name] = [
                {"key": _title(name), "value": value} for value in response.headers.get_all(name)
            ]
        forwarded["headers"] = headers
    return forwarded


def _title(name: str) -> str:
    # CloudFront wants the header's display name beside the lower-case key.
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
