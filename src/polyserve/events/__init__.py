"""Provider-neutral, typed events: frozen, slotted dataclasses with no third-party imports.

Each event type lives in its own module and is imported on first use, so a
function that only serves HTTP never creates the other classes at cold start.
"""

from __future__ import annotations

from importlib import import_module

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from polyserve.events._body import parse_json
    from polyserve.events.cloudevent import CloudEvent
    from polyserve.events.headers import Headers, QueryParams
    from polyserve.events.http import HttpRequest, HttpResponse
    from polyserve.events.queue import Message
    from polyserve.events.schedule import ScheduleEvent
    from polyserve.events.storage import StorageAction, StorageEvent
    from polyserve.events.stream import ChangeType, StreamRecord
    from polyserve.events.websocket import WebSocketAction, WebSocketEvent
    from polyserve.events.window import StreamWindow
    from polyserve.paths import decode_path

    Event = (
        Message
        | StorageEvent
        | ScheduleEvent
        | StreamRecord
        | StreamWindow
        | WebSocketEvent
        | CloudEvent
    )
    """Any non-HTTP event a handler can receive."""

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
    "StreamWindow",
    "WebSocketAction",
    "WebSocketEvent",
    "decode_path",
    "parse_json",
]

_MODULES = {
    "ChangeType": "stream",
    "CloudEvent": "cloudevent",
    "Headers": "headers",
    "HttpRequest": "http",
    "HttpResponse": "http",
    "Message": "queue",
    "QueryParams": "headers",
    "ScheduleEvent": "schedule",
    "StorageAction": "storage",
    "StorageEvent": "storage",
    "StreamRecord": "stream",
    "StreamWindow": "window",
    "WebSocketAction": "websocket",
    "WebSocketEvent": "websocket",
    "decode_path": "polyserve.paths",
    "parse_json": "_body",
}


def __getattr__(name: str) -> Any:
    if name == "Event":
        value: Any = (
            __getattr__("Message") | __getattr__("StorageEvent") | __getattr__("ScheduleEvent")
            | __getattr__("StreamRecord") | __getattr__("StreamWindow")
            | __getattr__("WebSocketEvent") | __getattr__("CloudEvent")
        )  # fmt: skip
    elif name in _MODULES:
        module = _MODULES[name]
        if "." not in module:
            module = f"polyserve.events.{module}"
        value = getattr(import_module(module), name)
    else:
        raise AttributeError(f"module 'polyserve.events' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
