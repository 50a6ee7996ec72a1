"""Cron Triggers: a ``ScheduledController`` in, a ``ScheduleEvent`` for one schedule out.

Cloudflare reports which cron expression fired, exactly as written in the
Wrangler file. It names the schedule through ``names[cron]`` when mapped, else
the one registration declared with that ``cron`` (whitespace aside).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

from polyserve.adapter import Event
from polyserve.errors import ConfigurationError, MalformedEventError, UnsupportedEventError
from polyserve.events import ScheduleEvent
from polyserve.routing import Trigger
from polyserve_cloudflare._time import from_js_time

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve_cloudflare.types import JsScheduledController

__all__ = [
    "Firing",
    "cron_of",
    "cron_table",
    "is_controller",
    "is_http",
    "matches",
    "schedule_name",
    "to_event",
    "to_native",
    "to_schedule",
]

is_http = False


class Firing:
    """What the schedule source translates: a controller and the app's cron table."""

    __slots__ = ("controller", "crons")

    def __init__(self, controller: JsScheduledController, crons: Mapping[str, str]) -> None:
        self.controller = controller
        self.crons = crons


def matches(raw: object) -> TypeGuard[Firing]:
    """True when ``raw`` is a ``Firing``."""
    return isinstance(raw, Firing)


def to_event(raw: Firing, context: Context, names: Mapping[str, str]) -> Event:
    """The one schedule that fired.

    Raises:
        UnsupportedEventError: no schedule matches the cron expression.
        MalformedEventError: the controller's fields are not what Cloudflare sends.
    """
    name = schedule_name(raw.crons, cron_of(raw.controller), names)
    return Event(Trigger.SCHEDULE, name, to_schedule(raw.controller, name))


def to_native(outcome: object, raw: Firing, context: Context) -> None:
    """Nothing: a scheduled run reports only success or an exception."""
    return None


def is_controller(raw: object) -> TypeGuard[JsScheduledController]:
    """True when ``raw`` looks like a ``ScheduledController`` (or an older ``ScheduledEvent``)."""
    return hasattr(raw, "scheduledTime") and hasattr(raw, "cron")


def _norm(cron: str) -> str:
    return " ".join(cron.split())


def cron_table(app: App) -> dict[str, str]:
    """Each declared cron expression (whitespace normalised) and the schedule it names.

    Raises:
        ConfigurationError: two schedules declare the same expression, so a firing
            could not tell them apart; map one through ``names`` or change a cron.
    """
    table: dict[str, str] = {}
    for reg in app.registrations:
        cron = reg.options.get("cron")
        if reg.trigger is not Trigger.SCHEDULE or not isinstance(cron, str):
            continue
        key = _norm(cron)
        if table.setdefault(key, reg.name) != reg.name:
            raise ConfigurationError(
                f"schedules {table[key]!r} and {reg.name!r} both use cron {cron!r}; "
                "Cloudflare reports only the expression, so give each its own"
            )
    return table


def schedule_name(crons: Mapping[str, str], cron: str, names: Mapping[str, str]) -> str:
    """The logical schedule name for a firing of ``cron``, given ``cron_table(app)``.

    Raises:
        UnsupportedEventError: no mapping and no registration matches ``cron``.
    """
    if cron in names:
        return names[cron]
    name = crons.get(_norm(cron))
    if name is None:
        raise UnsupportedEventError(
            f"no schedule is declared with cron {cron!r}; declare it with "
            "@app.schedule(name, cron=...) or map it with names={cron: name}",
            description={"trigger": Trigger.SCHEDULE.value, "cron": cron},
        )
    return name


def to_schedule(raw: JsScheduledController, name: str) -> ScheduleEvent:
    """The ``ScheduleEvent`` for one firing; its id is the name and the scheduled time.

    Raises:
        MalformedEventError: ``scheduledTime`` is not a time.
    """
    when = from_js_time(raw.scheduledTime, "scheduledTime")
    return ScheduleEvent(
        id=f"{name}@{when.isoformat()}",
        name=name,
        scheduled_at=when,
        raw=raw,
    )


def cron_of(raw: JsScheduledController) -> str:
    """The cron expression that fired (``""`` for a firing without one, as in local tests).

    Raises:
        MalformedEventError: ``cron`` is not a string.
    """
    cron: object = raw.cron  # typed str, but this is the boundary that checks it
    if cron is None:
        return ""
    if not isinstance(cron, str):
        raise MalformedEventError(f"cron is not a string: {type(cron).__name__}")
    return cron
