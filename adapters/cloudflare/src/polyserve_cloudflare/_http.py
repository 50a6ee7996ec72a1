"""Fetch events: a JavaScript ``Request`` in, a JavaScript ``Response`` out.

The request's URL is absolute and percent-encoded as the client sent it (the runtime
only escapes what a URL cannot hold): its path is decoded by
``polyserve.events.decode_path`` (a malformed escape, an encoded slash or a path that
is not UTF-8 is a 400 ``invalid_path``) and its raw query string parsed by
``QueryParams.from_string``. Headers come from
``Headers.entries()``, where a repeated name arrives as one value joined with
``", "``; ``Set-Cookie`` values come one by one from ``getSetCookie()``. Cloudflare
sets ``CF-Connecting-IP`` (the client) and ``CF-Ray`` (the request id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeGuard

from polyserve.errors import MalformedEventError
from polyserve.events import Headers, HttpRequest, QueryParams, decode_path

if TYPE_CHECKING:
    from polyserve.events import HttpResponse
    from polyserve_cloudflare.types import JsHeaders, JsRequest, JsRuntime

__all__ = ["matches", "native", "read_body", "request_id", "to_event", "to_native"]

# The Fetch standard forbids a body with these statuses; Response() throws if given one.
_NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


def native(raw: object) -> object:
    """The JavaScript request inside ``raw``.

    The runtime passes class-based entrypoints its own ``workers.Request`` wrapper
    (which keeps the JavaScript object as ``js_object``) and older module-level
    handlers the JavaScript object itself.
    """
    return getattr(raw, "js_object", raw)


def matches(raw: object) -> TypeGuard[JsRequest]:
    """True when ``raw`` looks like a Fetch ``Request``."""
    return all(hasattr(raw, name) for name in ("method", "url", "headers", "arrayBuffer"))


def request_id(raw: JsRequest) -> str:
    """The ``CF-Ray`` header, or ``""`` when there is none (a local run, a test)."""
    try:
        value = raw.headers.get("cf-ray")
    except Exception:
        return ""
    # A missing header is JavaScript null, which Pyodide does not turn into None.
    return value if isinstance(value, str) else ""


async def read_body(raw: JsRequest) -> bytes:
    """The whole request body.

    Raises:
        MalformedEventError: code ``unreadable_body`` when the stream fails or was used.
    """
    try:
        buffer = await raw.arrayBuffer()
        return bytes(buffer.to_bytes())
    except Exception as exc:
        raise MalformedEventError(
            f"the request body could not be read: {exc}", code="unreadable_body"
        ) from None


def to_event(raw: JsRequest, body: bytes, *, request_id: str = "") -> HttpRequest:
    """The ``HttpRequest`` for ``raw`` and its already read ``body``.

    Raises:
        MalformedEventError: code ``invalid_url`` for a URL that is not absolute or
            cannot be parsed, ``invalid_path`` for a path ``decode_path`` refuses.
    """
    from urllib.parse import urlsplit

    url = str(raw.url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise MalformedEventError(f"invalid request URL: {exc}", code="invalid_url") from None
    if not parts.scheme or not parts.netloc:
        raise MalformedEventError(f"request URL is not absolute: {url!r}", code="invalid_url")
    path = decode_path(parts.path or "/")
    headers = _headers(raw.headers)
    return HttpRequest(
        method=str(raw.method).upper(),
        path=path,
        query=QueryParams.from_string(parts.query),
        headers=headers,
        body=body,
        client=headers.get("cf-connecting-ip"),
        request_id=request_id,
        raw=raw,
    )


def to_native(response: HttpResponse, runtime: JsRuntime) -> Any:
    """A JavaScript ``Response`` carrying ``response``.

    Every header pair is appended on its own, so several ``Set-Cookie`` headers
    stay separate. The body always travels as bytes (a ``Uint8Array``): a string
    body would make ``Response`` add a ``text/plain`` content type the handler did
    not set. Statuses that cannot have a body (204, 205, 304) are sent without one.
    """
    body: bytes | None = response.body
    if not body or response.status in _NULL_BODY_STATUSES:
        body = None
    return runtime.new_response(response.status, response.headers.multi_items(), body)


def _headers(js_headers: JsHeaders) -> Headers:
    get_set_cookie = getattr(js_headers, "getSetCookie", None)
    cookies: list[str] | None = None
    if callable(get_set_cookie):
        cookies = [str(value) for value in get_set_cookie()]
    pairs: list[tuple[str, str]] = []
    for entry in js_headers.entries():
        name, value = str(entry[0]), str(entry[1])
        if cookies is not None and name.lower() == "set-cookie":
            continue
        pairs.append((name, value))
    pairs.extend(("set-cookie", value) for value in cookies or ())
    return Headers(pairs)
