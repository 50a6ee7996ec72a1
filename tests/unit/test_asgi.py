"""Serving an app over ASGI, driven with the messages an ASGI server sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from polyserve import App, HttpResponse


def call(
    app: App,
    method: str,
    path: str,
    *,
    raw_path: bytes | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request as an ASGI server passes it: ``(status, headers, body)`` of the answer."""
    scope: dict[str, Any] = {
        "type": "http", "method": method, "path": path, "query_string": b"",
        "headers": headers or [], "client": ("127.0.0.1", 5000),
    }  # fmt: skip
    if raw_path is not None:
        scope["raw_path"] = raw_path
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, answer = sent
    return start["status"], start["headers"], answer["body"]


def test_a_response_header_http_cannot_carry_is_a_500_never_sent() -> None:
    app = App("asgi")

    @app.get("/inject")
    def inject() -> HttpResponse:
        return HttpResponse.json({}, headers={"x-a": "a\r\nSet-Cookie: stolen=1"})

    status, headers, body = call(app, "GET", "/inject")
    assert status == 500
    assert headers == [(b"content-type", b"application/problem+json")]
    assert json.loads(body)["code"] == "internal_error"
