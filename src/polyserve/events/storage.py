"""Object storage notifications."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyserve._frozen import fast_init

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["StorageAction", "StorageEvent"]


class StorageAction(str, enum.Enum):
    """What happened to the object."""

    CREATED = "created"
    DELETED = "deleted"
    METADATA_UPDATED = "metadata_updated"
    ARCHIVED = "archived"
    RESTORED = "restored"


@fast_init
@dataclass(frozen=True, slots=True)
class StorageEvent:
    """An object was created, deleted or changed in a bucket or container."""

    id: str
    action: StorageAction
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version: str | None = None
    content_type: str | None = None
    occurred_at: dt.datetime | None = None
    raw: Any = field(default=None, compare=False, repr=False)
