"""Reading Google's wire formats: protobuf-JSON base64, schedule payloads, resource names.

The field readers and RFC 3339 times are ``polyserve.adapter``'s (``text``,
``json_object``, ``from_rfc3339``...), which every adapter uses; each raises
``MalformedEventError`` for a value that is missing or of the wrong type, so a
translation never lets ``KeyError``, ``TypeError`` or ``binascii.Error`` escape.
"""

from __future__ import annotations

from typing import Any

from polyserve.adapter import decode_base64 as _decode_base64
from polyserve.adapter import parse_json
from polyserve.errors import MalformedEventError

__all__ = ["decode_base64", "last_segment", "payload"]


def decode_base64(value: Any, what: str) -> bytes:
    """Standard or URL-safe base64 (as protobuf JSON allows), padding optional."""
    return _decode_base64(value, what, urlsafe=True)


def payload(body: bytes) -> Any:
    """What a schedule carries: ``None`` when empty, JSON if it parses, else text, else bytes."""
    if not body.strip():
        return None
    try:
        return parse_json(body, "schedule payload")
    except MalformedEventError:  # not JSON (or nested too deeply to parse): text
        pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body


def last_segment(resource: str, collection: str) -> str | None:
    """The id after ``collection/`` in a resource name (``projects/p/topics/t`` -> ``t``)."""
    marker = f"{collection}/"
    head, sep, tail = resource.rpartition(marker)
    if not sep or not tail or "/" in tail or (head and not head.endswith("/")):
        return None
    return tail
