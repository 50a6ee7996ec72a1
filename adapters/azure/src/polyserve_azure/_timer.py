"""Timer trigger: ``azure.functions.TimerRequest`` -> ``ScheduleEvent``; schedules as NCRONTAB.

Azure's schedules are six-field NCRONTAB expressions (second minute hour day
month weekday) in UTC unless ``WEBSITE_TIME_ZONE`` says otherwise. A five-field
``cron`` gets a leading ``0`` second; a ``rate`` becomes the step expression that
fires at exactly that interval, and a rate no such expression can keep (for
example ``7 minutes``) is a ``ConfigurationError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from polyserve.adapter import translating
from polyserve.errors import ConfigurationError, MalformedEventError
from polyserve.events import ScheduleEvent
from polyserve_azure import _wire

if TYPE_CHECKING:
    import datetime as dt

    from polyserve.context import Context
    from polyserve_azure._types import NativeTimer

__all__ = ["matches", "ncrontab", "read"]

_RATE = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


def ncrontab(name: str, cron: str | None, rate: str | None) -> str:
    """The NCRONTAB schedule for the schedule called ``name``; ``cron`` wins over ``rate``.

    Raises:
        ConfigurationError: neither is given, ``cron`` has not five fields, or ``rate``
            is not ``"<n> second(s)|minute(s)|hour(s)|day(s)"`` of an interval NCRONTAB
            can keep.
    """
    if cron is not None:
        fields = cron.split()
        if len(fields) != 5:
            raise ConfigurationError(f"schedule {name!r}: cron must have five fields: {cron!r}")
        return " ".join(["0", *fields])
    if rate is None:
        raise ConfigurationError(f"schedule {name!r} needs cron= or rate= to run on Azure")
    match = _RATE.match(rate)
    if match is None or int(match.group(1)) < 1:
        raise ConfigurationError(
            f"schedule {name!r}: rate must look like '5 minutes', got {rate!r}"
        )
    expression = _every(int(match.group(1)), match.group(2).lower())
    if expression is None:
        raise ConfigurationError(
            f"schedule {name!r}: NCRONTAB cannot fire every {rate.strip()} exactly; "
            "use an interval that divides a minute, an hour or a day, or give cron="
        )
    return expression


def _every(count: int, unit: str) -> str | None:
    # Each unit's step field and the fields below it that are pinned to zero.
    if unit == "second":
        if count % 60 == 0:
            return _every(count // 60, "minute")
        return _step(count, 60, "{} * * * * *")
    if unit == "minute":
        if count % 60 == 0:
            return _every(count // 60, "hour")
        return _step(count, 60, "0 {} * * * *")
    if unit == "hour":
        if count % 24 == 0:
            return _every(count // 24, "day")
        return _step(count, 24, "0 0 {} * * *")
    return "0 0 0 * * *" if count == 1 else None


def _step(count: int, base: int, template: str) -> str | None:
    if count >= base or base % count:
        return None
    return template.format("*" if count == 1 else f"*/{count}")


def matches(raw: object) -> bool:
    """True for an object shaped like ``azure.functions.TimerRequest``."""
    return hasattr(raw, "past_due")


def read(timer: NativeTimer, context: Context, *, name: str) -> ScheduleEvent:
    """The event for the schedule called ``name``.

    ``id`` is the invocation id; ``scheduled_at`` is the occurrence the timer fired
    for (the schedule status's ``Next``, which the host has not yet advanced), or
    ``None`` when schedule monitoring is off.

    Raises:
        MalformedEventError: ``past_due`` is not a boolean or the status is mistyped.
    """
    with translating("timer request"):
        past_due = timer.past_due
        if not isinstance(past_due, bool):
            raise MalformedEventError("timer past_due must be a boolean")
        return ScheduleEvent(
            id=context.invocation_id,
            name=name,
            scheduled_at=_occurrence(timer.schedule_status),
            is_past_due=past_due,
            raw=timer,
        )


def _occurrence(status: object) -> dt.datetime | None:
    if not status:
        return None
    if not isinstance(status, Mapping):
        raise MalformedEventError("timer schedule_status must be a mapping")
    value = status.get("Next", status.get("next"))
    return _wire.utc(value, "timer schedule_status Next")
