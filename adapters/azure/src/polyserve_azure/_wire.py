"""Reading values as the Functions host delivers them: text, bytes, counts, times, properties.

Every reader raises ``MalformedEventError`` for a value that is missing or of the
wrong type; the converters read inside ``polyserve.adapter.translating``, which
turns the lookup and type errors of a whole conversion into one, so no
``AttributeError`` or ``KeyError`` escapes a converter.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from polyserve.errors import MalformedEventError

__all__ = [
    "attempt",
    "body",
    "optional_text",
    "properties",
    "text",
    "utc",
]

_UTC = dt.timezone.utc
_FRACTION = re.compile(r"\.(\d+)")
# The timer extension writes its schedule status as "MM/dd/yyyy HH:mm:ssK".
_US_FORMATS = (
    "%m/%d/%Y %H:%M:%S%z",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S.%f%z",
    "%m/%d/%Y %H:%M:%S.%f",
)


def text(value: object, what: str) -> str:
    """``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        problem = "is missing" if value in (None, "") else f"must be a string, got {_kind(value)}"
        raise MalformedEventError(f"{what} {problem}")
    return value


def optional_text(value: object, what: str) -> str | None:
    """``value`` if it is a string, ``None`` if it is absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedEventError(f"{what} must be a string, got {_kind(value)}")
    return value


def body(value: object, what: str) -> bytes:
    """A message or request body: bytes as they are, text as UTF-8, ``None`` as empty."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    raise MalformedEventError(f"{what} must be bytes, got {_kind(value)}")


def attempt(value: object, what: str) -> int:
    """A 1-based delivery count; a count the host did not give means the first delivery."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEventError(f"{what} must be an integer, got {_kind(value)}")
    return max(value, 1)


def utc(value: object, what: str) -> dt.datetime | None:
    """A timezone-aware UTC datetime from a datetime or an ISO 8601 / US-style string.

    The worker gives naive datetimes for times written without an offset; the host
    writes those in UTC, so a naive value is taken as UTC.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = _parse(value, what)
    if not isinstance(value, dt.datetime):
        raise MalformedEventError(f"{what} must be a date-time, got {_kind(value)}")
    if value.tzinfo is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _parse(value: str, what: str) -> dt.datetime:
    raw = value.strip()
    if raw[-1:] in ("Z", "z"):
        raw = raw[:-1] + "+00:00"
    # fromisoformat (3.10) takes exactly 3 or 6 fraction digits; .NET writes up to 7.
    raw = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), raw, count=1)
    try:
        return dt.datetime.fromisoformat(raw)
    except ValueError:
        pass
    for fmt in _US_FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise MalformedEventError(f"{what} is not a date-time: {value!r}")


def properties(value: object, what: str) -> dict[str, str]:
    """Application properties as strings: text as is, booleans as ``true``/``false``,
    numbers in decimal, other JSON values as compact JSON; null values are dropped."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEventError(f"{what} must be a mapping, got {_kind(value)}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue
        out[str(key)] = _property_text(item)
    return out


def _property_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (int, float)):
        return str(item)
    if isinstance(item, dt.datetime):
        return item.isoformat()
    return json.dumps(item, separators=(",", ":"), sort_keys=True, default=str)


def _kind(value: object) -> str:
    return type(value).__name__
