"""HTTP streams: the HTTP function in the worker's FastAPI mode, answering with a stream.

Azure's Python worker sends a response body as it is produced only in its "HTTP
streams" mode, which it turns on when the ``azurefunctions-extensions-http-fastapi``
package is imported. In that mode the host forwards each request to a web server
inside the worker (uvicorn, serving FastAPI), the HTTP function gets FastAPI's
``Request`` and returns a FastAPI ``Response``, and that server sends it on: a
``StreamingResponse`` chunk by chunk.

``function_app(app, http_streams=True)`` generates the HTTP function that way. It
reads the request from the ASGI scope the worker's server built (the raw path,
the query bytes, every header value as sent) and the body as it arrives, refused
past the app's ``max_body_size``; it answers a ``StreamingResponse`` of polyserve
(a handler's iterator, a mounted app's streamed body) with a Starlette
``StreamingResponse`` of its chunks and any other response with a ``Response``.
The mode is the worker's, for every HTTP function of the app, which is why it is
asked for explicitly; ``extension`` is the one place that imports the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.adapter import error_response
from polyserve.errors import EventError, MissingDependencyError, PayloadTooLargeError
from polyserve.events import Headers, HttpRequest, HttpResponse, QueryParams, decode_path
from polyserve_azure import _http, _tracing

if TYPE_CHECKING:
    from types import ModuleType

    from starlette.requests import Request
    from starlette.responses import Response

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve_azure._identity import Identity

__all__ = ["EXTENSION", "extension", "serve"]

EXTENSION = "azurefunctions.extensions.http.fastapi"
"""The module whose import turns the worker's HTTP streams mode on."""


def extension() -> ModuleType:
    """The extension's module (``Request`` and ``Response`` for the function's annotations).

    Raises:
        MissingDependencyError: ``azurefunctions-extensions-http-fastapi`` is not installed.
    """
    import importlib

    try:
        return importlib.import_module(EXTENSION)
    except ImportError as exc:
        raise MissingDependencyError(
            "azurefunctions-extensions-http-fastapi",
            feature="polyserve_azure.function_app(http_streams=True)",
            extra="polyserve-azure[http-streams]",
        ) from exc


async def serve(
    app: App, req: Request, context: Context, *, route_prefix: str, identify: Identity
) -> Response:
    """Answer one request of the HTTP function in HTTP streams mode."""
    try:
        request = await read(req, context, route_prefix=route_prefix, limit=app.max_body_size)
    except EventError as exc:
        return native_response(error_response(exc, context), context)
    context.principal_from(identify, request.headers)
    context.trace_from(_tracing.http_trace, (request.headers, context.raw))
    response = await app.handle_http_async(request, context, stream=True)
    return native_response(response, context)


async def read(req: Request, context: Context, *, route_prefix: str, limit: int) -> HttpRequest:
    """The request as polyserve sees it, from the scope of the worker's web server.

    Raises:
        MalformedEventError: code ``invalid_path`` for a path ``decode_path`` refuses.
        PayloadTooLargeError: the body is longer than ``limit`` (the rest is not kept).
    """
    scope = req.scope
    raw_path = scope.get("raw_path")
    # Some servers leave the query on raw_path: it is not part of the path.
    path = decode_path(raw_path.partition(b"?")[0]) if raw_path else scope["path"]
    headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
    chunks: list[bytes] = []
    size = 0
    async for chunk in req.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return HttpRequest(
        method=scope["method"].upper(),
        path=_http.strip_prefix(path, route_prefix),
        query=QueryParams.from_string(scope.get("query_string", b"").decode("latin-1")),
        headers=headers,
        body=b"".join(chunks),
        client=_http.client_address(headers),
        request_id=context.invocation_id,
        raw=req,
    )


def native_response(response: HttpResponse, context: Context) -> Response:
    """A Starlette response for the worker's server: streamed when ``response`` is a stream.

    Every header keeps its own line (``Set-Cookie`` and any other repeated name).
    """
    from starlette.responses import Response, StreamingResponse

    native: Response
    if response.__class__ is not HttpResponse:  # loaded only by apps that stream
        from polyserve.streaming import StreamingResponse as Streamed
        from polyserve.streaming import iterate

        if isinstance(response, Streamed):
            # Sent as it comes; a failure midway ends the body early, with a log line.
            chunks = iterate(response, context, offload=True)
            native = StreamingResponse(chunks, status_code=response.status)
            native.raw_headers = _raw(response)
            return native
    native = Response(response.body, status_code=response.status)
    pairs = _raw(response)
    if any(name == b"content-length" for name, _ in pairs):
        native.raw_headers = pairs
    else:  # Starlette's own Content-Length, where the status allows a body
        native.raw_headers = [*native.raw_headers, *pairs]
    return native


def _raw(response: HttpResponse) -> list[tuple[bytes, bytes]]:
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.multi_items()
    ]
