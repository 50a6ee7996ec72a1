"""Provider-neutral, typed events: frozen, slotted dataclasses with no third-party imports."""

from __future__ import annotations

from polyserve.events.cloudevent import CloudEvent
from polyserve.events.http import Headers, HttpRequest, HttpResponse, QueryParams
from polyserve.events.queue import Message
from polyserve.events.schedule import ScheduleEvent
from polyserve.events.storage import StorageAction, StorageEvent
from polyserve.events.stream import ChangeType, StreamRecord

__all__ = [
    "ChangeType",
    "CloudEvent",
    "Event",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "Message",
    "QueryParams",
    "ScheduleEvent",
    "StorageAction",
    "StorageEvent",
    "StreamRecord",
]

Event = Message | StorageEvent | ScheduleEvent | StreamRecord | CloudEvent
"""Any non-HTTP event a handler can receive."""
