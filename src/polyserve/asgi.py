"""Serving an ``App`` over ASGI, for local runs (``uvicorn module:app``) and tests.

The path is the server's ``raw_path`` (the bytes of the request line, before any
query), decoded by ``polyserve.paths.decode_path`` as the adapters decode theirs:
a malformed escape, an encoded slash or a path that is not UTF-8 is a 400
``invalid_path``. The decoded ``path`` of the scope, where ``%FF`` has become U+FFFD
and ``%2F`` a slash, is used only when the server gives no ``raw_path``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from polyserve.app import error_response
from polyserve.context import Context
from polyserve.errors import EventError
from polyserve.events.headers import Headers, QueryParams
from polyserve.events.http import HttpRequest, HttpResponse
from polyserve.paths import decode_path
from polyserve.tracing import from_traceparent

if TYPE_CHECKING:
    from polyserve.app import App

__all__ = ["JsonLineFormatter", "log_config", "request_from_scope", "serve"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def request_from_scope(scope: dict[str, Any], body: bytes) -> HttpRequest:
    """The ``HttpRequest`` for an ASGI HTTP scope and its full body.

    Raises:
        MalformedEventError: code ``invalid_path`` for a path ``decode_path`` refuses.
    """
    headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
    client = scope.get("client")
    raw_path = scope.get("raw_path")
    return HttpRequest(
        method=scope["method"],
        # Some servers leave the query on raw_path: it is not part of the path.
        path=decode_path(raw_path.partition(b"?")[0]) if raw_path else scope["path"],
        query=QueryParams.from_string(scope.get("query_string", b"").decode("latin-1")),
        headers=headers,
        body=body,
        client=client[0] if client else None,
        request_id=headers.get("x-request-id") or uuid.uuid4().hex,
        raw=scope,
    )


class JsonLineFormatter(logging.Formatter):
    """Formats a record of the ``polyserve`` logger as one JSON object on one line.

    ``ctx.logger`` records already are such objects, and pass through unchanged, so
    a local server prints the lines a cloud's log capture sees. Any other record
    becomes ``{"level": ..., "message": ..., "logger": ...}``, with its traceback,
    if any, under ``"traceback"``, so that every line stays one JSON object.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{") and not record.exc_info:
            try:
                if isinstance(json.loads(message), dict):
                    return message
            except ValueError:
                pass
        line: dict[str, Any] = {
            "level": record.levelname,
            "message": message,
            "logger": record.name,
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def log_config(level: str = "info") -> dict[str, Any]:
    """The logging configuration ``polyserve serve`` hands to uvicorn.

    uvicorn's own configuration, plus a handler that writes the ``polyserve``
    logger's records (every ``ctx.logger`` line) to stderr, one JSON object per
    line, from ``level`` up (``"debug"``, ``"info"``, ``"warning"``, ``"error"`` or
    ``"critical"``). The logger does not propagate, so a root handler the app
    installs does not print each line twice.

    Library code never installs this: a cloud captures the process's output
    itself. It is for local servers, which own their process's logging. Raises
    ``ValueError`` for an unknown level, and ``ImportError`` without uvicorn.
    """
    import copy

    from uvicorn.config import LOGGING_CONFIG

    name = level.upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"unknown log level {level!r}")
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["polyserve"] = {"()": f"{__name__}.JsonLineFormatter"}
    config["handlers"]["polyserve"] = {
        "class": "logging.StreamHandler",
        "formatter": "polyserve",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["polyserve"] = {
        "handlers": ["polyserve"],
        "level": name,
        "propagate": False,
    }
    return config


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= limit else b"\0" * (limit + 1)


async def serve(app: App, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Handle one ASGI connection scope with ``app``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Mounted ASGI apps start with the server, so a failure shows at once.
                try:
                    for mount in app.mounts:
                        await mount.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Process-scoped dependencies end with the server.
                await app.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        raise ValueError(f"polyserve serves HTTP only, not {scope['type']!r}")
    # Reading stops keeping bytes past the limit; the app then answers 413.
    body = await _read_body(receive, app.max_body_size)
    if body is None:
        return
    try:
        request = request_from_scope(scope, body)
    except EventError as exc:  # a path that cannot be decoded
        context = Context("local", invocation_id=uuid.uuid4().hex, function_name=app.name)
        response = error_response(exc, context)
    else:
        # The caller's W3C trace, so that what the handler sends continues it.
        headers = request.headers
        trace = from_traceparent(headers.get("traceparent"), headers.get("tracestate"))
        context = Context(
            "local", invocation_id=request.request_id, function_name=app.name, trace=trace
        )
        response = await app.handle_http_async(request, context, stream=True)
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.multi_items()
            ],
        }
    )
    if response.__class__ is not HttpResponse:  # loaded only by apps that stream
        from polyserve.streaming import StreamingResponse, iterate

        if isinstance(response, StreamingResponse):
            # Each chunk as it comes; a failure midway ends the body (and is logged).
            async for chunk in iterate(response, context, offload=True):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
    await send({"type": "http.response.body", "body": response.body})
