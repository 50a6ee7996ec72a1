"""Cross-origin resource sharing (CORS) for HTTP handlers."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from polyserve.events.headers import Headers
from polyserve.events.http import HttpRequest, HttpResponse, check_header

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["CORS"]


@dataclass(frozen=True, slots=True)
class CORS:
    """CORS settings. ``allow_origins=("*",)`` allows any origin (never with credentials).

    Preflight requests (``OPTIONS`` with ``Access-Control-Request-Method``) are
    answered by the app itself; other responses gain the ``Access-Control-*``
    headers when the request's ``Origin`` is allowed.
    """

    allow_origins: Sequence[str] = ("*",)
    allow_methods: Sequence[str] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    allow_headers: Sequence[str] = ("authorization", "content-type", "idempotency-key")
    expose_headers: Sequence[str] = ()
    allow_credentials: bool = False
    max_age: int = 600

    def __post_init__(self) -> None:
        from polyserve.errors import ConfigurationError, InvalidHeaderError

        if self.allow_credentials and "*" in self.allow_origins:
            raise ConfigurationError("CORS: allow_credentials cannot be used with origin '*'")
        # Every setting ends up in a response header: one that HTTP cannot carry is a
        # set-up error, not a 500 on the first cross-origin request.
        try:
            for origin in self.allow_origins:
                check_header("access-control-allow-origin", origin)
            for token in (*self.allow_methods, *self.allow_headers, *self.expose_headers):
                check_header(token, "")  # methods and header names are tokens
        except InvalidHeaderError as exc:
            raise ConfigurationError(f"CORS: a setting cannot be sent in a header: {exc}") from None

    def _allowed_origin(self, origin: str) -> str | None:
        if "*" in self.allow_origins:
            return "*"
        return origin if origin in self.allow_origins else None

    def is_preflight(self, request: HttpRequest) -> bool:
        return (
            request.method == "OPTIONS"
            and "origin" in request.headers
            and "access-control-request-method" in request.headers
        )

    def preflight(self, request: HttpRequest) -> HttpResponse:
        """The answer to a preflight request: 204 with the allowed methods and headers."""
        origin = self._allowed_origin(request.headers.get("origin", ""))
        if origin is None:
            return HttpResponse.empty(403)
        headers = Headers(
            [
                ("access-control-allow-origin", origin),
                ("access-control-allow-methods", ", ".join(self.allow_methods)),
                ("access-control-allow-headers", ", ".join(self.allow_headers)),
                ("access-control-max-age", str(self.max_age)),
                *self._common(origin),
            ]
        )
        return HttpResponse(status=204, headers=headers)

    def apply(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """``response`` with CORS headers added, if the request came from an allowed origin."""
        request_origin = request.headers.get("origin")
        if request_origin is None:
            return response
        origin = self._allowed_origin(request_origin)
        if origin is None:
            return response
        headers = response.headers.with_set("access-control-allow-origin", origin)
        for name, value in self._common(origin):
            headers = headers.with_added(name, value)
        if self.expose_headers:
            headers = headers.with_set(
                "access-control-expose-headers", ", ".join(self.expose_headers)
            )
        if response.__class__ is not HttpResponse:  # a StreamingResponse keeps its stream
            return replace(response, headers=headers)
        return HttpResponse(response.status, headers, response.body)

    def _common(self, origin: str) -> list[tuple[str, str]]:
        extra = []
        if origin != "*":
            extra.append(("vary", "Origin"))
        if self.allow_credentials:
            extra.append(("access-control-allow-credentials", "true"))
        return extra
