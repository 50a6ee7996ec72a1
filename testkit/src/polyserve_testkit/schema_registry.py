"""A small schema registry on a loopback port, speaking the Confluent REST API's reads.

It answers ``GET /schemas/ids/{id}`` and ``GET /subjects/{subject}/versions/{version}``
(each with ``?format=serialized`` for Protobuf, the base64 ``FileDescriptorProto``),
404 with the registry's error body for anything it does not hold, and 401 when it
was given credentials and a request lacks them. It counts the requests it serves.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class Registered:
    """One schema as the registry holds it."""

    type: str
    text: str
    references: list[dict[str, Any]] = field(default_factory=list)
    descriptor: bytes | None = None  # Protobuf: the serialized FileDescriptorProto

    def reply(self, serialized: bool) -> dict[str, Any]:
        text = self.text
        if serialized and self.descriptor is not None:
            text = base64.b64encode(self.descriptor).decode()
        body: dict[str, Any] = {"schema": text}
        if self.type != "AVRO":  # the registry leaves out Avro's type
            body["schemaType"] = self.type
        if self.references:
            body["references"] = self.references
        return body


class LocalRegistry:
    """The registry's contents, its address and what it has served."""

    def __init__(self, authorization: str | None = None) -> None:
        self.ids: dict[int, Registered] = {}
        self.subjects: dict[tuple[str, int], Registered] = {}
        self.requests: list[str] = []
        self.authorization = authorization
        self.fail_with: int | None = None
        self.redirect_to: str | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, schema_id: int, schema: Registered, subject: str | None = None) -> None:
        self.ids[schema_id] = schema
        if subject is not None:
            self.subjects[(subject, 1)] = schema

    def start(self) -> LocalRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(registry: LocalRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            registry.requests.append(self.path)
            if registry.fail_with is not None:
                return self._send(registry.fail_with, {"error_code": 50001, "message": "down"})
            if registry.redirect_to is not None and not self.path.startswith("/moved"):
                self.send_response(302)
                self.send_header("Location", registry.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            wanted = registry.authorization
            if wanted is not None and self.headers.get("Authorization") != wanted:
                return self._send(401, {"error_code": 401, "message": "Unauthorized"})
            parts = urlsplit(self.path)
            serialized = "format=serialized" in parts.query
            segments = [unquote(s) for s in parts.path.strip("/").split("/")]
            found: Registered | None = None
            if len(segments) == 3 and segments[:2] == ["schemas", "ids"]:
                found = registry.ids.get(int(segments[2]))
            elif len(segments) == 4 and segments[0] == "subjects" and segments[2] == "versions":
                found = registry.subjects.get((segments[1], int(segments[3])))
            if found is None:
                return self._send(404, {"error_code": 40403, "message": "Schema not found"})
            return self._send(200, found.reply(serialized))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test output stays readable

    return Handler


def running_registry(authorization: str | None = None) -> Iterator[LocalRegistry]:
    """A started registry, stopped afterwards (for fixtures)."""
    registry = LocalRegistry(authorization).start()
    try:
        yield registry
    finally:
        registry.stop()
