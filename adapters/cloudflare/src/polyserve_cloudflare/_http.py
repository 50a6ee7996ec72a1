"""Fetch events: a JavaScript ``Request`` in, a JavaScript ``Response`` out.

The request's URL is absolute and percent-encoded as the client sent it (the runtime
only escapes what a URL cannot hold): its path is decoded by
``polyserve.events.decode_path`` (a malformed escape, an encoded slash or a path that
is not UTF-8 is a 400 ``invalid_path``) and its raw query string parsed by
``QueryParams.from_string``. Headers come from
``Headers.entries()``, where a repeated name arrives as one value joined with
``", "``; ``Set-Cookie`` values come one by one from ``getSetCookie()``. Cloudflare
sets ``CF-Connecting-IP`` (the client) and ``CF-Ray`` (the request id).

A streamed response (a handler's iterator, a mounted app's ``StreamingResponse``)
becomes a ``Response`` over a ``ReadableStream`` whose ``pull`` takes the next chunk,
so the client gets each chunk as it is produced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeGuard

from polyserve.adapter import problem
from polyserve.errors import MalformedEventError
from polyserve.events import Headers, HttpRequest, HttpResponse, QueryParams, decode_path
from polyserve_cloudflare import _tracing

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from polyserve.context import Context
    from polyserve.identity import Principal
    from polyserve_cloudflare.types import JsHeaders, JsRequest, JsRuntime

__all__ = [
    "Fetch",
    "is_http",
    "is_request",
    "matches",
    "native",
    "read_body",
    "request_id",
    "response_of",
    "to_event",
    "to_native",
    "to_request",
]

is_http = True
"""A fetch that cannot be read is answered with a 400 problem response."""


class Fetch:
    """What the fetch source translates: the request, its body (read before, since
    reading is asynchronous), the runtime that builds the ``Response``, and the
    reader of the caller's identity."""

    __slots__ = ("body", "identify", "request", "runtime")

    def __init__(
        self,
        request: JsRequest,
        body: bytes,
        runtime: JsRuntime,
        identify: Callable[[Any], Principal | None] | None = None,
    ) -> None:
        self.request = request
        self.body = body
        self.runtime = runtime
        self.identify = identify


# The Fetch standard forbids a body with these statuses; Response() throws if given one.
_NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


def native(raw: object) -> object:
    """The JavaScript request inside ``raw``.

    The runtime passes class-based entrypoints its own ``workers.Request`` wrapper
    (which keeps the JavaScript object as ``js_object``) and older module-level
    handlers the JavaScript object itself.
    """
    return getattr(raw, "js_object", raw)


def matches(raw: object) -> TypeGuard[Fetch]:
    """True when ``raw`` is a ``Fetch`` (a request whose body was read)."""
    return isinstance(raw, Fetch)


def to_event(raw: Fetch, context: Context, names: Mapping[str, str]) -> HttpRequest:
    """The ``HttpRequest`` for a fetch; the context continues its trace and learns
    its caller (both worked out only when read).

    Raises:
        MalformedEventError: see ``to_request``.
    """
    event = to_request(raw.request, raw.body, request_id=context.invocation_id)
    if raw.identify is not None:
        context.principal_from(raw.identify, event.headers)
    context.trace_from(_tracing.trace_of, event.headers)
    if event.headers.get("cf-ray") is not None:
        context.log_fields = _tracing.log_fields
    return event


def to_native(outcome: HttpResponse, raw: Fetch, context: Context) -> Any:
    """The JavaScript ``Response`` for ``outcome``; one the runtime refuses (a
    newline in a header value, say) is logged and answered with a 500."""
    try:
        if outcome.__class__ is not HttpResponse:  # loaded only by apps that stream
            from polyserve.streaming import StreamingResponse, iterate

            if isinstance(outcome, StreamingResponse) and outcome.status not in _NULL_BODY_STATUSES:
                chunks = iterate(outcome, context)
                return raw.runtime.new_stream_response(
                    outcome.status, outcome.headers.multi_items(), chunks
                )
        return response_of(outcome, raw.runtime)
    except Exception as exc:
        context.logger.exception("response could not be sent", exc)
        failure = problem(500, "internal_error", "internal server error", context)
        return response_of(failure, raw.runtime)


def is_request(raw: object) -> TypeGuard[JsRequest]:
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


def to_request(raw: JsRequest, body: bytes, *, request_id: str = "") -> HttpRequest:
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


def response_of(response: HttpResponse, runtime: JsRuntime) -> Any:
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
