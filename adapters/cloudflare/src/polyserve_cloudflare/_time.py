"""JavaScript times (``Date`` objects, epoch milliseconds) as aware UTC datetimes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from polyserve.errors import MalformedEventError

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["from_js_time"]


def from_js_time(value: object, what: str) -> dt.datetime:
    """``value`` (a ``Date``, epoch milliseconds or a datetime) as an aware UTC datetime.

    A naive datetime is local time: Cloudflare's ``workers`` SDK turns a ``Date``
    into ``datetime.fromtimestamp(ms / 1000)`` (UTC on Workers, whose clock zone is UTC).

    Raises:
        MalformedEventError: ``value`` is none of these, or is not a valid time.
    """
    import datetime as dt

    if isinstance(value, dt.datetime):
        try:
            return value.astimezone(dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise MalformedEventError(f"{what} is out of range: {value!r}") from None
    millis: object = value
    get_time = getattr(value, "getTime", None)
    if callable(get_time):
        millis = get_time()
    if isinstance(millis, bool) or not isinstance(millis, (int, float)):
        raise MalformedEventError(f"{what} is not a time: {type(value).__name__}")
    if not math.isfinite(millis):
        raise MalformedEventError(f"{what} is not a valid time")
    try:
        return dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise MalformedEventError(f"{what} is out of range: {millis}") from None
