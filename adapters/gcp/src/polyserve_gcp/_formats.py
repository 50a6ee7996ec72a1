"""Reading Google's wire formats: JSON fields, RFC 3339 times, base64 and resource names.

Every reader raises ``MalformedEventError`` for a value that is missing or of the
wrong type, so a translation never lets ``KeyError``, ``TypeError`` or
``binascii.Error`` escape.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
from base64 import b64decode, urlsafe_b64decode
from typing import TYPE_CHECKING, Any

from polyserve.errors import MalformedEventError
from polyserve.events import parse_json

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "as_object",
    "decode_base64",
    "json_object",
    "last_segment",
    "optional_text",
    "parse_time",
    "payload",
    "text",
]

_UTC = dt.timezone.utc

# RFC 3339 as Google writes it: a 'Z' or an offset, and up to nine fraction digits.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def as_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``MalformedEventError``."""
    if not isinstance(value, dict):
        raise MalformedEventError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def json_object(data: Any, what: str) -> dict[str, Any]:
    """Event data that must be a JSON object: already decoded, or JSON bytes or text.

    Raises:
        MalformedEventError: code ``invalid_json`` for text that is not JSON (nested
            too deeply included), ``malformed_event`` for anything but an object.
    """
    if isinstance(data, (bytes, bytearray, str)):
        data = parse_json(data, what)
    if data is None:
        raise MalformedEventError(f"{what} is missing")
    return as_object(data, what)


def text(obj: Mapping[str, Any], key: str, what: str) -> str:
    """The required string field ``key`` of ``obj``."""
    value = obj.get(key)
    if not isinstance(value, str):
        problem = "is missing" if value is None else f"must be a string, not {type(value).__name__}"
        raise MalformedEventError(f"{what} field {key!r} {problem}")
    return value


def optional_text(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    """The string field ``key`` of ``obj``, or ``None`` when it is absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEventError(f"{what} field {key!r} must be a string")
    return value


def parse_time(value: Any, what: str) -> dt.datetime:
    """An RFC 3339 timestamp as a UTC datetime (nanoseconds are cut to microseconds)."""
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise MalformedEventError(f"{what} is not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if zone in ("Z", "z"):
            tz = _UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            tz = dt.timezone(sign * offset)
        when = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz,
        )  # fmt: skip
    except ValueError as exc:
        raise MalformedEventError(f"{what} is not a valid time: {value!r} ({exc})") from None
    return when.astimezone(_UTC)


def decode_base64(value: Any, what: str) -> bytes:
    """Standard or URL-safe base64 (as protobuf JSON allows), padding optional."""
    if not isinstance(value, str):
        raise MalformedEventError(f"{what} must be a base64 string", code="invalid_base64")
    padded = value + "=" * (-len(value) % 4)
    try:
        if "-" in value or "_" in value:
            return urlsafe_b64decode(padded.encode("ascii"))
        return b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedEventError(f"{what} is not valid base64", code="invalid_base64") from None


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
