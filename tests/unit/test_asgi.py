"""Serving an app over ASGI, driven with the messages an ASGI server sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

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


def _path_app() -> tuple[App, list[str]]:
    app = App("asgi")
    seen: list[str] = []

    @app.get("/files/{name}")
    def file(name: str) -> str:
        seen.append(name)
        return name

    @app.get("/pets/{pet_id}")
    def pet(pet_id: str) -> str:
        seen.append(pet_id)
        return pet_id

    return app, seen


@pytest.mark.parametrize(
    ("raw_path", "decoded"),
    [
        (b"/files/%FF%FE", "/files/\ufffd\ufffd"),  # what a server's scope["path"] holds
        (b"/pets%2F1", "/pets/1"),
        (b"/files/a%2fb", "/files/a/b"),
        (b"/files/%zz", "/files/%zz"),
        (b"/files/%", "/files/%"),
    ],
)
def test_paths_refused_by_the_rule_are_400_whatever_the_server_decoded(
    raw_path: bytes, decoded: str
) -> None:
    app, seen = _path_app()
    status, _, body = call(app, "GET", decoded, raw_path=raw_path)
    assert status == 400
    assert json.loads(body)["code"] == "invalid_path"
    assert seen == []


@pytest.mark.parametrize(
    ("raw_path", "decoded", "param"),
    [
        (b"/files/caf%C3%A9%20au%20lait", "/files/café au lait", "café au lait"),
        (b"/files/caf\xc3\xa9", "/files/café", "café"),
        (b"/files/100%25?q=%2F", "/files/100%", "100%"),  # the query is not the path
        (None, "/files/plain", "plain"),  # a server without raw_path
    ],
)
def test_paths_are_decoded_from_the_raw_path(
    raw_path: bytes | None, decoded: str, param: str
) -> None:
    app, seen = _path_app()
    status, _, _ = call(app, "GET", decoded, raw_path=raw_path)
    assert status == 200
    assert seen == [param]
