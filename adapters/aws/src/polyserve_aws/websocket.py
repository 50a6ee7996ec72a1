"""Replies to API Gateway WebSocket connections, through the management API.

A handler answers the client that sent a message with ``send(event, data)``, and
reaches any other connection of the same API with ``connection_id=``::

    from polyserve import App, WebSocketEvent
    from polyserve_aws import websocket

    @app.websocket("$default")
    def echo(event: WebSocketEvent) -> None:
        websocket.send(event, {"echo": event.json()})

The call is ``PostToConnection`` (``POST {endpoint}/@connections/{id}``) of the
``apigatewaymanagementapi`` client, whose endpoint is ``event.endpoint``
(``https://{domainName}/{stage}``) unless ``endpoint=`` names another (a custom
domain's base path). boto3 is imported by the first call (Lambda ships it; outside,
install ``polyserve-aws[outbound]``), and one client is made per endpoint. The
function's role needs ``execute-api:ManageConnections`` on the API.
"""

from __future__ import annotations

from polyserve.errors import ConfigurationError, PolyserveError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from polyserve.events import WebSocketEvent

__all__ = ["ConnectionGoneError", "WebSocketSendError", "close", "send"]


class ConnectionGoneError(PolyserveError):
    """The connection is closed: API Gateway answered ``GoneException`` (410)."""

    default_code = "connection_gone"
    default_status = 410


class WebSocketSendError(PolyserveError):
    """The management API refused the call (throttling, limits, permissions)."""

    default_code = "websocket_send_failed"
    default_status = 502


_clients: dict[str, Any] = {}


def _client(endpoint: str) -> Any:
    found = _clients.get(endpoint)
    if found is None:
        try:
            import boto3
        except ImportError as exc:
            from polyserve.errors import MissingDependencyError

            raise MissingDependencyError(
                "boto3", feature="WebSocket replies", extra="polyserve-aws[outbound]"
            ) from exc
        make: Any = boto3.client
        found = _clients[endpoint] = make("apigatewaymanagementapi", endpoint_url=endpoint)
    return found


def _target(
    event: WebSocketEvent, connection_id: str | None, endpoint: str | None
) -> tuple[str, str]:
    where = endpoint or event.endpoint
    if not where:
        raise ConfigurationError(
            "the event names no endpoint (domainName and stage); pass endpoint="
        )
    return where, connection_id or event.connection_id


def _encode(data: bytes | str | Any) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    import json

    return json.dumps(data, separators=(",", ":")).encode()


def _call(method: str, connection: str, client: Any, **kwargs: Any) -> None:
    import botocore.exceptions as errors

    try:
        getattr(client, method)(ConnectionId=connection, **kwargs)
    except errors.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code == "GoneException":
            raise ConnectionGoneError(f"connection {connection!r} is gone") from None
        raise WebSocketSendError(f"{code}: {error.get('Message', '')}") from None
    except errors.BotoCoreError as exc:
        raise WebSocketSendError(f"{type(exc).__name__}: {exc}") from None


def send(
    event: WebSocketEvent,
    data: bytes | str | Any,
    *,
    connection_id: str | None = None,
    endpoint: str | None = None,
    client: Any = None,
) -> None:
    """Post ``data`` to the event's connection (or ``connection_id`` on the same API).

    ``data``: bytes as they are, text as UTF-8, anything else as compact JSON.
    ``client`` replaces the boto3 client (tests, a client with other options).

    Raises:
        ConnectionGoneError: the connection is closed (code ``connection_gone``).
        WebSocketSendError: any other refusal or transport error.
        ConfigurationError: no endpoint is known for the event.
        MissingDependencyError: boto3 is not installed.
    """
    where, connection = _target(event, connection_id, endpoint)
    _call("post_to_connection", connection, client or _client(where), Data=_encode(data))


def close(
    event: WebSocketEvent,
    *,
    connection_id: str | None = None,
    endpoint: str | None = None,
    client: Any = None,
) -> None:
    """Close the event's connection (or ``connection_id``): ``DeleteConnection``.

    Raises:
        The errors of ``send``.
    """
    where, connection = _target(event, connection_id, endpoint)
    _call("delete_connection", connection, client or _client(where))
