"""CloudEvents 1.0 on the wire: the structured (JSON) and binary (headers) modes, written
and read back, and HTTP responses.

The structured form writes bytes data as ``data_base64``, JSON data as a JSON value
(when ``datacontenttype`` is JSON or absent) and other text as a string; extensions
are top-level attributes, written as text. The binary form puts every attribute in a
``ce-`` header (``content-type`` for ``datacontenttype``) and the data in the body.

Reading the binary form back types the data by its content type: a JSON type gives
the decoded JSON value, ``text/*`` a ``str``, any other (or none) ``bytes``. So an event
reads back equal to the one written when its ``datacontenttype`` says what its data
is; an event without one whose data is not bytes is written with, and reads back
with, ``application/json``. Empty data reads back as ``None``, extensions as text,
times in UTC.
"""

from __future__ import annotations

from polyserve._json import dumps
from polyserve.outbound.errors import PublishError
from polyserve.outbound.message import STRUCTURED_TYPE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from polyserve.events.cloudevent import CloudEvent
    from polyserve.events.http import HttpResponse
    from polyserve.events.queue import Message

__all__ = [
    "STRUCTURED_TYPE",
    "attributes",
    "cloudevent_response",
    "from_binary",
    "from_dict",
    "from_message",
    "from_structured",
    "to_binary",
    "to_dict",
    "to_structured",
]

_CORE = ("specversion", "id", "source", "type", "subject", "datacontenttype", "dataschema")
_RESERVED = frozenset((*_CORE, "time", "data", "data_base64"))


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _time(value: Any) -> str:
    text: str = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return _time(value)
    return str(value)


def attributes(event: CloudEvent) -> dict[str, str]:
    """Every context attribute of ``event`` (extensions included) as text, ``None`` left out.

    Raises:
        PublishError: a required attribute is empty, or an extension name is not
            lower-case letters and digits or redefines a spec attribute.
    """
    out: dict[str, str] = {}
    for name in _CORE:
        value = getattr(event, name)
        if value is not None:
            out[name] = str(value)
    for name in ("id", "source", "type"):
        if not out.get(name):
            raise PublishError(f"a CloudEvent needs a non-empty {name}", code="invalid_cloudevent")
    if event.time is not None:
        out["time"] = _time(event.time)
    for name, value in event.extensions.items():
        if not (name.isascii() and name.isalnum() and name == name.lower()):
            raise PublishError(
                f"CloudEvent extension names are lower-case letters and digits, got {name!r}",
                code="invalid_cloudevent",
            )
        if name in _RESERVED:
            raise PublishError(
                f"extension {name!r} redefines a CloudEvents attribute", code="invalid_cloudevent"
            )
        if value is not None:
            out[name] = _attribute_text(value)
    return out


def to_dict(event: CloudEvent) -> dict[str, Any]:
    """``event`` in the structured JSON form, as a dict (for EventBridge ``detail`` and batches)."""
    out: dict[str, Any] = dict(attributes(event))
    data = event.data
    if data is None:
        return out
    if isinstance(data, (bytes, bytearray, memoryview)):
        import base64

        out["data_base64"] = base64.b64encode(bytes(data)).decode()
    else:  # JSON values, and text of any other media type, are written as they are
        out["data"] = data
    return out


def to_structured(event: CloudEvent) -> bytes:
    """``event`` as a structured-mode JSON document (media type ``STRUCTURED_TYPE``)."""
    return dumps(to_dict(event))


def to_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """``event`` in binary mode: ``ce-`` headers (``content-type`` for ``datacontenttype``) and body."""
    headers = {}
    for name, value in attributes(event).items():
        if name == "datacontenttype":
            headers["content-type"] = value
        else:
            headers["ce-" + name] = value
    data = event.data
    if data is None:
        body = b""
    elif isinstance(data, (bytes, bytearray, memoryview)):
        body = bytes(data)
    elif isinstance(data, str) and not _is_json(event.datacontenttype):
        body = data.encode()
    else:
        body = dumps(data)
        headers.setdefault("content-type", "application/json")
    return headers, body


def cloudevent_response(
    event: CloudEvent, *, binary: bool = False, status: int = 200
) -> HttpResponse:
    """An HTTP response carrying ``event``, structured by default or in binary mode."""
    from polyserve.events.http import HttpResponse

    if binary:
        headers, body = to_binary(event)
        media = headers.pop("content-type", "application/octet-stream")
        return HttpResponse.binary(body, status, headers, media_type=media)
    return HttpResponse.binary(to_structured(event), status, media_type=STRUCTURED_TYPE)


# -- reading -------------------------------------------------------------------


def _event(fields: Mapping[str, Any], data: Any, what: str) -> CloudEvent:
    from polyserve.adapter import from_rfc3339
    from polyserve.errors import MalformedEventError
    from polyserve.events.cloudevent import CloudEvent

    for name in ("id", "source", "type", "specversion"):
        value = fields.get(name)
        if not isinstance(value, str) or not value:
            raise MalformedEventError(f"{what} has no {name}")
    for name in ("subject", "datacontenttype", "dataschema"):
        if not isinstance(fields.get(name, ""), str):
            raise MalformedEventError(f"{what} {name} must be a string")
    when = fields.get("time")
    return CloudEvent(
        id=fields["id"],
        source=fields["source"],
        type=fields["type"],
        specversion=fields["specversion"],
        subject=fields.get("subject"),
        time=None if when is None else from_rfc3339(when, f"{what} time"),
        datacontenttype=fields.get("datacontenttype"),
        dataschema=fields.get("dataschema"),
        data=data,
        extensions={k: v for k, v in fields.items() if k not in _RESERVED},
    )


def from_structured(body: bytes | str) -> CloudEvent:
    """The event in a structured-mode JSON document (as ``to_structured`` writes it).

    Raises:
        MalformedEventError: the document is not JSON, not an object, or lacks a
            required attribute.
    """
    from polyserve.errors import MalformedEventError
    from polyserve.events._body import parse_json

    what = "structured CloudEvent"
    fields = parse_json(body, what)
    if not isinstance(fields, dict):
        raise MalformedEventError(f"{what} is not a JSON object")
    return from_dict(fields)


def from_dict(fields: Mapping[str, Any]) -> CloudEvent:
    """The event in a decoded structured-mode document (as ``to_dict`` writes it; an
    EventBridge ``detail``).

    Raises:
        MalformedEventError: a required attribute is missing or has the wrong type.
    """
    data = fields.get("data")
    if "data_base64" in fields:
        from polyserve.adapter import decode_base64

        data = decode_base64(fields["data_base64"], "structured CloudEvent data_base64")
    return _event(fields, data, "structured CloudEvent")


def from_binary(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """The event in binary mode: ``ce-`` headers or attributes (names in any case),
    ``content-type`` for ``datacontenttype``, and the data in ``body``, typed as the
    module docstring says. Other headers are not part of the event.

    Raises:
        MalformedEventError: a required attribute is missing, or JSON data is not JSON.
    """
    from polyserve.events._body import parse_json

    what = "binary CloudEvent"
    fields: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            fields[lower[3:]] = value
        elif lower == "content-type":
            fields["datacontenttype"] = value
    media = fields.get("datacontenttype")
    data: Any
    if not body:
        data = None
    elif media is not None and _is_json(media):
        data = parse_json(body, f"{what} data")
    elif media is not None and media.lower().startswith("text/"):
        data = body.decode("utf-8", errors="replace")
    else:
        data = body
    return _event(fields, data, what)


def from_message(message: Message) -> CloudEvent | None:
    """The event a queue or topic message carries: structured when its ``content-type``
    is ``application/cloudevents+json``, binary when it has a ``ce-specversion``
    attribute; ``None`` when it carries none.

    Raises:
        MalformedEventError: the message says it carries an event that cannot be read.
    """
    attributes = message.attributes
    media = ""
    is_binary = False
    for name, value in attributes.items():
        lower = name.lower()
        if lower == "content-type":
            media = value.lower()
        elif lower == "ce-specversion":
            is_binary = True
    if media.startswith("application/cloudevents+json"):
        return from_structured(message.body)
    if is_binary:
        return from_binary(attributes, message.body)
    return None
