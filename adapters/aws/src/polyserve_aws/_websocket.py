"""API Gateway WebSocket APIs: connect, message and disconnect events.

Recognised by a ``requestContext`` with an ``eventType`` of ``CONNECT``,
``MESSAGE`` or ``DISCONNECT`` and a ``connectionId``. Each becomes a
``WebSocketEvent`` for the ``Trigger.WEBSOCKET`` registration named after its
``routeKey`` (``$connect``, ``$disconnect``, ``$default`` or a custom route), or
the ``"*"`` one. ``connect`` carries the upgrade request's headers and query
(multi-value maps preferred); ``message`` its body (base64-decoded when
``isBase64Encoded``). ``endpoint`` is where replies are posted:
``https://{domainName}/{stage}`` (see ``polyserve_aws.websocket``).

The handler's result answers the integration: ``None`` is ``{"statusCode": 200}``;
text, bytes (base64 unless they are UTF-8) or a JSON value becomes the ``body`` (a route with a route response sends
it to the client); an ``HttpResponse`` gives its status, headers and body, which is
how ``$connect`` refuses a connection or picks a subprotocol
(``Sec-WebSocket-Protocol``). A malformed event is answered with a 400 problem body,
which refuses a connection; a handler that raises fails the invocation as usual.
"""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Any

from polyserve.adapter import (
    Event,
    as_object,
    from_epoch_ms,
    optional_text,
    response_body,
    text,
    translating,
)
from polyserve.errors import ConfigurationError
from polyserve.events import Headers, HttpResponse, QueryParams, WebSocketAction, WebSocketEvent
from polyserve.routing import Trigger
from polyserve_aws._http import multi_pairs, pairs, request_body

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context

__all__ = ["is_http", "matches", "to_event", "to_native"]

# Not an HTTP request, but answered like one: a malformed event gets a 400 reply.
is_http = True

_WHAT = "API Gateway WebSocket event"
_ACTIONS = {
    "CONNECT": WebSocketAction.CONNECT,
    "MESSAGE": WebSocketAction.MESSAGE,
    "DISCONNECT": WebSocketAction.DISCONNECT,
}


def matches(raw: dict[str, Any]) -> bool:
    """True for a WebSocket API's connect, message or disconnect event."""
    context = raw.get("requestContext")
    return (
        isinstance(context, dict)
        and context.get("eventType") in _ACTIONS
        and "connectionId" in context
    )


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Event:
    """The ``WebSocketEvent``, for the registration of its route key.

    Raises:
        MalformedEventError: a field is missing or has the wrong type (answered 400).
    """
    with translating(_WHAT):
        request = as_object(raw["requestContext"], _WHAT, "requestContext")
        action = _ACTIONS[request["eventType"]]
        route = text(request, "routeKey", _WHAT)
        if "multiValueHeaders" in raw:
            headers = multi_pairs(raw["multiValueHeaders"], _WHAT, "multiValueHeaders")
        else:
            headers = pairs(raw.get("headers"), _WHAT, "headers")
        if "multiValueQueryStringParameters" in raw:
            query = multi_pairs(
                raw["multiValueQueryStringParameters"], _WHAT, "multiValueQueryStringParameters"
            )
        else:
            query = pairs(raw.get("queryStringParameters"), _WHAT, "queryStringParameters")
        domain = optional_text(request, "domainName", _WHAT)
        stage = optional_text(request, "stage", _WHAT)
        identity = request.get("identity")
        client = identity.get("sourceIp") if isinstance(identity, dict) else None
        connected = request.get("connectedAt")
        occurred = request.get("requestTimeEpoch")
        event = WebSocketEvent(
            action=action,
            connection_id=text(request, "connectionId", _WHAT),
            route=route,
            body=request_body(raw, _WHAT),
            headers=Headers(headers),
            query=QueryParams(query),
            client=client if isinstance(client, str) and client else None,
            request_id=optional_text(request, "requestId", _WHAT),
            source=optional_text(request, "apiId", _WHAT) or "",
            endpoint=f"https://{domain}/{stage}" if domain and stage else None,
            connected_at=None
            if connected is None
            else from_epoch_ms(connected, f"{_WHAT} connectedAt"),
            occurred_at=None if occurred is None else from_epoch_ms(occurred, f"{_WHAT} time"),
            disconnect_reason=optional_text(request, "disconnectReason", _WHAT),
            raw=raw,
        )
    return Event(Trigger.WEBSOCKET, route, event)


def to_native(outcome: Any, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """The integration response: ``statusCode``, and a ``body`` when there is one."""
    if outcome is None:
        return {"statusCode": 200}
    if isinstance(outcome, HttpResponse):
        out: dict[str, Any] = {"statusCode": outcome.status}
        if outcome.headers:
            out["headers"] = {k: ", ".join(v) for k, v in outcome.headers.to_multi_dict().items()}
        if outcome.body:
            out["body"], out["isBase64Encoded"] = response_body(outcome)
        return out
    if isinstance(outcome, str):
        return {"statusCode": 200, "body": outcome}
    if isinstance(outcome, (bytes, bytearray)):
        try:
            return {"statusCode": 200, "body": bytes(outcome).decode(), "isBase64Encoded": False}
        except UnicodeDecodeError:
            encoded = binascii.b2a_base64(outcome, newline=False).decode("ascii")
            return {"statusCode": 200, "body": encoded, "isBase64Encoded": True}
    import json

    try:
        return {"statusCode": 200, "body": json.dumps(outcome, separators=(",", ":"))}
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"a WebSocket handler returns None, text, bytes, JSON values or an HttpResponse: {exc}"
        ) from None
