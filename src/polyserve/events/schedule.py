"""Scheduled (timer) invocations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyserve._frozen import fast_init

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["ScheduleEvent"]


@fast_init
@dataclass(frozen=True, slots=True)
class ScheduleEvent:
    """A timer fired. ``name`` is the logical schedule name; ``payload`` any input it carries."""

    id: str
    name: str
    scheduled_at: dt.datetime | None = None
    is_past_due: bool = False
    payload: Any = None
    raw: Any = field(default=None, compare=False, repr=False)
