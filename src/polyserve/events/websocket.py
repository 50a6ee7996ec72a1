"""WebSocket connections: a client connecting, sending a message, or going away."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyserve._frozen import fast_init
from polyserve.events._body import parse_json
from polyserve.events.headers import Headers, QueryParams

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["WebSocketAction", "WebSocketEvent"]

_NO_HEADERS = Headers()
_NO_QUERY = QueryParams()


class WebSocketAction(str, enum.Enum):
    """What happened on a connection."""

    CONNECT = "connect"
    MESSAGE = "message"
    DISCONNECT = "disconnect"


@fast_init
@dataclass(frozen=True, slots=True)
class WebSocketEvent:
    """One event of a WebSocket connection held open by the platform.

    The platform keeps the connection; the function only hears of it. ``route`` is
    the route the event was sent to (API Gateway's route key: ``$connect``,
    ``$disconnect``, ``$default`` or a custom one picked from the message), and the
    ``@app.websocket`` registration named after it (or ``"*"``) takes the event.
    ``connection_id`` names the connection for replies, which are posted to
    ``endpoint``. ``headers`` and ``query`` are the upgrade request's, sent with
    ``connect`` only. ``body`` is a message's payload.
    ``disconnect_reason`` says why a connection closed, where the platform tells.
    """

    action: WebSocketAction
    connection_id: str
    route: str
    body: bytes = b""
    headers: Headers = _NO_HEADERS
    query: QueryParams = _NO_QUERY
    client: str | None = None
    request_id: str | None = None
    source: str = ""
    endpoint: str | None = None
    connected_at: dt.datetime | None = None
    occurred_at: dt.datetime | None = None
    disconnect_reason: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            MalformedEventError: code ``invalid_json``.
        """
        return parse_json(self.body, "WebSocket message")
