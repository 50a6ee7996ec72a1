"""Reading AWS's JSON: typed field access, ARNs, timestamps, base64 and logical names.

Every reader raises ``MalformedEventError`` for a field that is missing or of the
wrong type, so a translation never lets ``KeyError`` or ``TypeError`` escape.
"""

from __future__ import annotations

import binascii
from functools import lru_cache

from polyserve.errors import MalformedEventError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "as_object",
    "decode_base64",
    "first_record",
    "from_epoch",
    "from_epoch_ms",
    "from_iso",
    "logical_name",
    "malformed",
    "optional_text",
    "resource_name",
    "text",
]


def _datetime() -> tuple[type[dt.datetime], dt.timezone]:
    # datetime is imported by the first timestamp read: HTTP events carry none.
    import datetime

    return datetime.datetime, datetime.timezone.utc


def malformed(what: str, exc: Exception) -> MalformedEventError:
    """The error for a ``what`` that failed to translate with ``exc`` (a lookup or type error)."""
    if isinstance(exc, KeyError):
        reason = f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    elif isinstance(exc, (TypeError, AttributeError)):
        reason = "a field has the wrong type"
    else:
        reason = str(exc) or type(exc).__name__
    return MalformedEventError(f"malformed {what}: {reason}")


def as_object(value: Any, what: str, field: str = "") -> dict[str, Any]:
    """``value`` (the ``field`` of a ``what``) if it is a JSON object, else an error."""
    if not isinstance(value, dict):
        where = f"{what} {field}" if field else what
        raise MalformedEventError(f"{where} must be an object, got {type(value).__name__}")
    return value


def text(obj: Mapping[str, Any], key: str, what: str) -> str:
    """The required string field ``key`` of ``obj``."""
    value = obj.get(key)
    if not isinstance(value, str):
        problem = "is missing" if value is None else f"must be a string, got {type(value).__name__}"
        raise MalformedEventError(f"{what} field {key!r} {problem}")
    return value


def optional_text(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    """The string field ``key`` of ``obj``, or ``None`` when it is absent or null."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedEventError(f"{what} field {key!r} must be a string, got {type(value).__name__}")


def decode_base64(value: Any, what: str) -> bytes:
    """Strictly decoded base64, or ``MalformedEventError`` with code ``invalid_base64``."""
    if not isinstance(value, str):
        raise MalformedEventError(f"{what} must be a base64 string", code="invalid_base64")
    from base64 import b64decode  # only events that carry base64 pay for the import

    try:
        return b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEventError(f"{what} is not valid base64", code="invalid_base64") from None


def first_record(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first entry of ``Records`` if it is an object, which says what sent the batch."""
    records = raw.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return records[0]
    return None


@lru_cache(maxsize=256)
def resource_name(arn: str) -> str:
    """The short name in an ARN: the last ``:``-part, and of that the name after a type prefix.

    ``arn:aws:sqs:r:a:orders`` -> ``orders``; ``arn:aws:kinesis:r:a:stream/clicks`` ->
    ``clicks``; ``arn:aws:dynamodb:r:a:table/Pets/stream/2024-01-01T00:00:00.000`` -> ``Pets``;
    ``arn:aws:scheduler:r:a:schedule/default/nightly`` -> ``nightly``.
    """
    # arn:partition:service:region:account:resource; the resource may itself hold ':'
    # (a DynamoDB stream label is a timestamp).
    fields = arn.split(":", 5)
    resource = fields[5] if len(fields) == 6 and fields[0] == "arn" else arn
    parts = resource.split("/")
    if len(parts) >= 4 and parts[0] == "table":  # a DynamoDB stream ARN ends in /stream/<label>
        return parts[1]
    return parts[-1]


def logical_name(native: str, names: Mapping[str, str]) -> str:
    """The registration name for a native source: ``names[arn]``, ``names[short]`` or short."""
    if names:
        mapped = names.get(native)
        if mapped is not None:
            return mapped
        short = resource_name(native)
        return names.get(short, short)
    return resource_name(native)


def from_epoch(seconds: Any, what: str) -> dt.datetime:
    """A UTC datetime from seconds since the epoch (int, float or numeric string)."""
    try:
        datetime, utc = _datetime()
        return datetime.fromtimestamp(float(seconds), utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MalformedEventError(f"{what} is not a timestamp: {seconds!r}") from None


def from_epoch_ms(millis: Any, what: str) -> dt.datetime:
    """A UTC datetime from milliseconds since the epoch, exact to the millisecond.

    (``fromtimestamp`` rounds to the microsecond, far finer than a float's error here.)
    """
    try:
        datetime, utc = _datetime()
        return datetime.fromtimestamp(int(millis) / 1000, utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MalformedEventError(f"{what} is not a timestamp: {millis!r}") from None


def from_iso(value: Any, what: str) -> dt.datetime:
    """A UTC datetime from an ISO 8601 string such as ``2024-05-01T10:00:00.123Z``."""
    if isinstance(value, str):
        try:
            datetime, utc = _datetime()
            parsed = datetime.fromisoformat(
                value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
            )
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=utc) if parsed.tzinfo is None else parsed
    raise MalformedEventError(f"{what} is not an ISO 8601 time: {value!r}")
