"""Publishing to an Event Grid topic over HTTP, in the Event Grid or the CloudEvents schema.

One ``POST <endpoint>?api-version=2018-01-01`` per array of events, the array up to
1 MB and each event up to 1 MB (Event Grid's limits; a larger one is answered 413).
The key goes in ``aeg-sas-key``; a token credential's token in ``Authorization``. The
standard library sends it: no SDK is needed.

The CloudEvents schema carries a message whole, written by ``polyserve.outbound.cloudevents``:
``datacontenttype`` is the content type, JSON bodies are ``data``, other text is a
string and bytes are ``data_base64``; the attributes ``source``, ``type`` and ``subject``
fill those fields, the others are extensions, and the trace is the ``traceparent`` and
``tracestate`` extensions. The Event Grid schema has no place for attributes or a trace:
``type``, ``subject`` and ``dataversion`` fill ``eventType``, ``subject`` and
``dataVersion``, and the others are not sent.
"""

from __future__ import annotations

from polyserve.errors import ConfigurationError
from polyserve.outbound.errors import MessageTooLargeError, PublishError, TransientPublishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from polyserve.outbound.message import Message

__all__ = ["EVENT_LIMIT", "REQUEST_LIMIT", "SCOPE", "endpoint_url", "events", "post"]

#: Event Grid's limits: each event and the whole array up to 1 MB.
EVENT_LIMIT = 1024 * 1024
REQUEST_LIMIT = 1024 * 1024
#: The scope of a token for publishing with a Microsoft Entra identity.
SCOPE = "https://eventgrid.azure.net/.default"
API_VERSION = "2018-01-01"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json; charset=utf-8"
EVENT_GRID_JSON = "application/json; charset=utf-8"
_TIMEOUT = 30.0
_TRANSIENT = frozenset((408, 429, 500, 502, 503, 504))
_CONFIGURATION = frozenset((401, 403, 404))
_TEXT_TYPES = ("text/", "application/xml")


def endpoint_url(endpoint: str) -> str:
    """The publish URL of a topic endpoint: ``/api/events`` and the api-version added."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"an Event Grid topic is an https:// endpoint, got {endpoint!r}")
    url = endpoint if parts.path not in ("", "/") else endpoint.rstrip("/") + "/api/events"
    if "api-version=" not in parts.query:
        url += ("&" if parts.query else "?") + "api-version=" + API_VERSION
    return url


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _data(message: Message) -> Any:
    """The body as the ``data`` the event carries: JSON as its value, text as text, else bytes."""
    media = message.content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        import json

        try:
            return json.loads(message.body)
        except ValueError:
            pass
    if media.startswith(_TEXT_TYPES):
        try:
            return message.body.decode()
        except UnicodeDecodeError:
            pass
    return message.body


def _given_event(data: Any, message: Message) -> Any:
    """The ``CloudEvent`` a payload already is (a ``CloudEvent`` or its structured form), or ``None``."""
    if not isinstance(data, dict) or data.get("specversion") != "1.0":
        return None
    if not all(isinstance(data.get(k), str) and data[k] for k in ("id", "source", "type")):
        return None
    import datetime as dt

    from polyserve.events.cloudevent import CloudEvent

    known = ("id", "source", "type", "specversion", "subject", "time", "datacontenttype")
    extensions = {
        k: v
        for k, v in data.items()
        if k not in (*known, "dataschema", "data", "data_base64", "extensions", "raw")
    }
    nested = data.get("extensions")
    if isinstance(nested, dict):
        extensions.update(nested)
    trace = message.trace
    if trace is not None and trace.traceparent is not None and "traceparent" not in extensions:
        extensions["traceparent"] = trace.traceparent
        if trace.tracestate:
            extensions["tracestate"] = trace.tracestate
    body = data.get("data")
    encoded = data.get("data_base64")
    if isinstance(encoded, str):
        import base64
        import binascii

        try:
            body = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise PublishError("data_base64 is not base64", code="invalid_cloudevent") from None
    time = data.get("time")
    try:
        when = dt.datetime.fromisoformat(time.replace("Z", "+00:00")) if time else None
    except (AttributeError, ValueError):
        raise PublishError(
            f"CloudEvent time {time!r} is not RFC 3339", code="invalid_cloudevent"
        ) from None
    return CloudEvent(
        id=data["id"],
        source=data["source"],
        type=data["type"],
        subject=data.get("subject"),
        time=when,
        datacontenttype=data.get("datacontenttype"),
        dataschema=data.get("dataschema"),
        data=body,
        extensions={k: v for k, v in extensions.items() if v is not None},
    )


def cloudevent(message: Message) -> dict[str, Any]:
    """``message`` as a CloudEvents 1.0 structured event (a dict ready for JSON).

    A payload that already is a CloudEvent (a ``polyserve.CloudEvent``, or a dict in the
    structured form) is that event, the trace added as extensions.

    Raises:
        PublishError: an attribute's name cannot be a CloudEvents extension name.
    """
    from polyserve.events.cloudevent import CloudEvent
    from polyserve.outbound.cloudevents import to_dict

    data = _data(message)
    given = _given_event(data, message)
    if given is not None:
        return to_dict(given)
    attributes = dict(message.attributes)
    source = attributes.pop("source", "polyserve")
    kind = attributes.pop("type", "message")
    subject = attributes.pop("subject", None)
    extensions: dict[str, Any] = attributes
    trace = message.trace
    if trace is not None and trace.traceparent is not None:
        extensions["traceparent"] = trace.traceparent
        if trace.tracestate:
            extensions["tracestate"] = trace.tracestate
    event = CloudEvent(
        id=message.dedup_id or _new_id(),
        source=source,
        type=kind,
        subject=subject,
        time=_now(),
        datacontenttype=message.content_type,
        data=data,
        extensions=extensions,
    )
    return to_dict(event)


def grid_event(message: Message) -> dict[str, Any]:
    """``message`` as an event in the Event Grid schema (a dict ready for JSON)."""
    data = _data(message)
    if isinstance(data, bytes):  # the schema has no binary data: bytes travel as base64 text
        import base64

        data = base64.b64encode(data).decode()
    attributes = message.attributes
    time = _now().isoformat().replace("+00:00", "Z")
    return {
        "id": message.dedup_id or _new_id(),
        "eventType": attributes.get("type", "message"),
        "subject": attributes.get("subject", "polyserve"),
        "eventTime": time,
        "dataVersion": attributes.get("dataversion", "1.0"),
        "data": data,
    }


def events(
    messages: Sequence[Message], cloudevents: bool, topic: str
) -> list[tuple[str, bytes] | Exception]:
    """Each message as its event's id and JSON, or the error that keeps it from being sent."""
    from polyserve._json import dumps

    out: list[tuple[str, bytes] | Exception] = []
    for message in messages:
        try:
            event = cloudevent(message) if cloudevents else grid_event(message)
        except PublishError as exc:
            out.append(exc)
            continue
        encoded = dumps(event)
        if len(encoded) > EVENT_LIMIT:
            out.append(MessageTooLargeError(topic, len(encoded), EVENT_LIMIT, "Event Grid"))
        else:
            out.append((str(event["id"]), encoded))
    return out


def arrays(encoded: Sequence[bytes]) -> list[list[int]]:
    """The positions of ``encoded`` grouped into arrays of at most ``REQUEST_LIMIT`` bytes."""
    groups: list[list[int]] = []
    size = 0
    for i, event in enumerate(encoded):
        added = len(event) + 1  # the comma, or the brackets' share
        if not groups or size + added + 1 > REQUEST_LIMIT:
            groups.append([])
            size = 1
        groups[-1].append(i)
        size += added
    return groups


def post(url: str, headers: dict[str, str], body: bytes, endpoint: str) -> None:
    """POST one array of events.

    Raises:
        TransientPublishError: throttled, a server error or no connection.
        ConfigurationError: the topic or the credential was refused (401, 403, 404).
        MessageTooLargeError: Event Grid answered 413.
        PublishError: any other refusal.
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
        detail = _detail(exc)
        exc.close()
        if status in _TRANSIENT:
            raise TransientPublishError(f"Event Grid answered {status}: {detail}") from None
        if status in _CONFIGURATION:
            raise ConfigurationError(
                f"Event Grid topic {endpoint!r} answered {status} (check the endpoint and "
                f"the key or identity): {detail}"
            ) from None
        if status == 413:
            raise MessageTooLargeError(endpoint, len(body), REQUEST_LIMIT, "Event Grid") from None
        raise PublishError(f"Event Grid answered {status}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientPublishError(f"Event Grid {endpoint!r} unreachable: {reason}") from None


def _detail(exc: Any) -> str:
    """Event Grid's error message, from its JSON error document; short, never a request body."""
    import json

    try:
        doc = json.loads(exc.read(4096) or b"{}")
        message = doc.get("error", {}).get("message", "")
    except (ValueError, AttributeError, OSError):
        message = ""
    return str(message)[:300] or str(exc.reason)
