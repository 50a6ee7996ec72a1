"""HTTP trigger: ``azure.functions.HttpRequest`` in, ``azure.functions.HttpResponse`` out.

One catch-all function answers every route. The path comes from the request URL
with the host's route prefix (``api`` unless host.json changes it) removed. The host
builds that URL from the path ASP.NET Core decoded and encoded again, with an encoded
slash kept as ``%2F``, so it is decoded here by ``polyserve.events.decode_path`` (a
malformed escape, an encoded slash or a path that is not UTF-8 is a 400
``invalid_path``). The
query comes from the raw query string, because the worker's ``params`` keeps one
value per name. The host joins repeated request headers with ", " before the
worker sees them, so a handler sees one joined value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from polyserve.adapter import translating
from polyserve.errors import MalformedEventError
from polyserve.events import Headers, HttpRequest, HttpResponse, QueryParams, decode_path
from polyserve_azure import _wire

if TYPE_CHECKING:
    import azure.functions as func

    from polyserve.context import Context
    from polyserve_azure._types import NativeHttpRequest

__all__ = ["client_address", "matches", "native_response", "read", "strip_prefix"]


def matches(raw: object) -> bool:
    """True for an object shaped like ``azure.functions.HttpRequest``."""
    return all(hasattr(raw, name) for name in ("method", "url", "headers", "get_body"))


def read(req: NativeHttpRequest, context: Context, *, route_prefix: str) -> HttpRequest:
    """The request as polyserve sees it; ``route_prefix`` is host.json's ``routePrefix``.

    Raises:
        MalformedEventError: the method, URL, headers or body is missing or mistyped;
            code ``invalid_path`` for a path ``decode_path`` refuses.
    """
    with translating("HTTP request"):
        method = _wire.text(req.method, "HTTP method").upper()
        url = urlsplit(_wire.text(req.url, "HTTP request url"))
        headers = _headers(req.headers)
        body = _wire.body(req.get_body(), "HTTP request body")
    return HttpRequest(
        method=method,
        path=strip_prefix(decode_path(url.path or "/"), route_prefix),
        query=QueryParams.from_string(url.query),
        headers=headers,
        body=body,
        client=client_address(headers),
        request_id=context.invocation_id,
        raw=req,
    )


def native_response(response: HttpResponse) -> func.HttpResponse:
    """The response for the host.

    Repeated headers other than ``Set-Cookie`` are joined with ", " because the
    worker keeps one value per name; each ``Set-Cookie`` stays its own header,
    which the worker sends to the host as a separate cookie.
    """
    import azure.functions as func

    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in response.headers.multi_items():
        if name == "set-cookie":
            cookies.append(value)
        elif name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    native = func.HttpResponse(
        response.body,
        status_code=response.status,
        headers=headers,
        mimetype=response.media_type or None,
    )
    for cookie in cookies:
        native.headers.add("Set-Cookie", cookie)
    return native


def _headers(value: object) -> Headers:
    if value is None:
        return Headers()
    if not isinstance(value, Mapping):
        raise MalformedEventError(f"HTTP headers must be a mapping, got {type(value).__name__}")
    pairs: list[tuple[str, str]] = []
    for name, item in value.items():
        if not isinstance(name, str) or not isinstance(item, str):
            raise MalformedEventError(f"HTTP header {name!r} must be a string")
        pairs.append((name, item))
    return Headers(pairs)


def strip_prefix(path: str, route_prefix: str) -> str:
    """``path`` without host.json's ``routePrefix`` (matched without regard to case)."""
    prefix = "/" + route_prefix.strip("/")
    if prefix == "/":
        return path
    # The host matches its route prefix without regard to case.
    head = path[: len(prefix)]
    rest = path[len(prefix) :]
    if head.lower() == prefix.lower() and (not rest or rest.startswith("/")):
        return rest or "/"
    return path


def client_address(headers: Headers) -> str | None:
    """The client's address: the last ``X-Forwarded-For`` entry, which Azure appended."""
    # Azure's front end appends the address it saw to X-Forwarded-For, so the last
    # entry is the one a client cannot forge. IPv4 entries may carry a ":port".
    forwarded = headers.get("x-forwarded-for", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    if not last:
        return None
    if last.startswith("["):
        return last[1:].split("]", 1)[0] or None
    if last.count(":") == 1:
        return last.split(":", 1)[0] or None
    return last
