"""Data-change records from database streams."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyserve._frozen import fast_init

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

__all__ = ["ChangeType", "StreamRecord"]


class ChangeType(str, enum.Enum):
    """The kind of change a record describes."""

    INSERT = "insert"
    MODIFY = "modify"
    REMOVE = "remove"
    UPSERT = "upsert"


@fast_init
@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One change to one item in a table or collection.

    ``keys`` identify the item; ``old`` and ``new`` are its values before and
    after the change, as plain JSON-like values, where the source provides them.
    ``sequence`` orders records of one item or shard.
    """

    id: str
    change: ChangeType
    source: str
    keys: Mapping[str, Any] = field(default_factory=dict)
    old: Mapping[str, Any] | None = None
    new: Mapping[str, Any] | None = None
    sequence: str | None = None
    occurred_at: dt.datetime | None = None
    raw: Any = field(default=None, compare=False, repr=False)
