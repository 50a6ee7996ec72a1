"""CloudEvents 1.0 out: the structured (JSON) and binary (headers) modes, and HTTP responses.

The structured form writes bytes data as ``data_base64``, JSON data as a JSON value
(when ``datacontenttype`` is JSON or absent) and other text as a string; extensions
are top-level attributes. The binary form puts every attribute in a ``ce-`` header
and the data in the body, typed by ``datacontenttype``.
"""

from __future__ import annotations

from polyserve._json import dumps
from polyserve.outbound.errors import PublishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from polyserve.events.cloudevent import CloudEvent
    from polyserve.events.http import HttpResponse

__all__ = ["STRUCTURED_TYPE", "attributes", "cloudevent_response", "to_binary", "to_structured"]

STRUCTURED_TYPE = "application/cloudevents+json; charset=utf-8"
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
