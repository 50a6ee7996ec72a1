"""The local ASGI server (``polyserve serve``, ``uvicorn module:app``) as an HTTP encoding.

The codec builds the scope uvicorn builds: ``raw_path`` holds the bytes of the request
line's path, ``path`` that path decoded (U+FFFD for bytes that are not UTF-8, as
uvicorn decodes it), the query and headers their bytes. It runs the app as an ASGI
application and reads back what it sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from polyserve import Headers
from polyserve_testkit.codecs import NativeResponse

if TYPE_CHECKING:
    from polyserve import App, HttpRequest

__all__ = ["AsgiCodec"]


def _bytes(text: str) -> bytes:
    """``text`` as the bytes a client sends for it (a lone surrogate as its UTF-8 form)."""
    return text.encode("utf-8", "surrogatepass")


@dataclasses.dataclass
class AsgiCodec:
    """``App`` served over ASGI, with the scope uvicorn gives it."""

    name: str = "local_asgi"
    decodes_path = False  # raw_path is the request line as sent

    def expected(self, request: HttpRequest) -> HttpRequest:
        return request

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        return response

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        target = quote(request.path, safe="/")
        if request.query:
            target += "?" + request.query.to_string()
        return self._run(app, request.method, target, request.headers.multi_items(), request.body)

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        return self._run(app, method, target, headers, b"")

    def _run(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> NativeResponse:
        raw = _bytes(target)
        raw_path, _, query = raw.partition(b"?")
        scope: dict[str, Any] = {
            "type": "http",
            "method": method,
            "path": unquote(raw_path.decode("latin-1"), errors="replace"),
            "raw_path": raw_path,
            "query_string": query,
            "headers": [(_bytes(k).lower(), _bytes(v)) for k, v in headers],
            "client": ("203.0.113.7", 5000),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(app(scope, receive, send))
        start, answer = sent
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
        return NativeResponse(start["status"], Headers(pairs), answer["body"])
