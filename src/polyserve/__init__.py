"""polyserve: write a serverless function once, run it on four clouds.

Names are imported on first use, so ``import polyserve`` costs almost nothing
at cold start. ``retry`` is imported from its module, ``from polyserve.retry
import retry``, because the module of the same name would shadow it here.
"""

from __future__ import annotations

from importlib import import_module

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from polyserve.app import App
    from polyserve.batch import BatchResult, ItemFailure
    from polyserve.context import Context, ContextLogger
    from polyserve.cors import CORS
    from polyserve.errors import (
        ConfigurationError,
        CorruptRecordError,
        EventError,
        EventValidationError,
        FieldError,
        HttpError,
        IdempotencyError,
        InProgressError,
        InvalidHeaderError,
        KeyMissingError,
        MalformedEventError,
        MissingDependencyError,
        PayloadMismatchError,
        PayloadTooLargeError,
        PolyserveError,
        RecordTooLargeError,
        RetryExhaustedError,
        StoreUnavailableError,
        UnsupportedEventError,
        UnsupportedMediaTypeError,
    )
    from polyserve.events import (
        ChangeType,
        CloudEvent,
        Event,
        Headers,
        HttpRequest,
        HttpResponse,
        Message,
        QueryParams,
        ScheduleEvent,
        StorageAction,
        StorageEvent,
        StreamRecord,
        StreamWindow,
        WebSocketAction,
        WebSocketEvent,
    )
    from polyserve.idempotency.decorator import idempotent
    from polyserve.identity import Principal
    from polyserve.params import Body, Depends, Header, Query
    from polyserve.pipeline import Middleware, SetAside
    from polyserve.retry import Retry
    from polyserve.routing import Registration, Route, Router, Trigger

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "App": "polyserve.app",
    "BatchResult": "polyserve.batch",
    "Body": "polyserve.params",
    "CORS": "polyserve.cors",
    "ChangeType": "polyserve.events.stream",
    "CloudEvent": "polyserve.events.cloudevent",
    "ConfigurationError": "polyserve.errors",
    "Context": "polyserve.context",
    "ContextLogger": "polyserve.context",
    "CorruptRecordError": "polyserve.errors",
    "Event": "polyserve.events",
    "EventError": "polyserve.errors",
    "EventValidationError": "polyserve.errors",
    "FieldError": "polyserve.errors",
    "Depends": "polyserve.params",
    "Header": "polyserve.params",
    "Headers": "polyserve.events.headers",
    "HttpError": "polyserve.errors",
    "HttpRequest": "polyserve.events.http",
    "HttpResponse": "polyserve.events.http",
    "IdempotencyError": "polyserve.errors",
    "InProgressError": "polyserve.errors",
    "InvalidHeaderError": "polyserve.errors",
    "ItemFailure": "polyserve.batch",
    "KeyMissingError": "polyserve.errors",
    "MalformedEventError": "polyserve.errors",
    "Message": "polyserve.events.queue",
    "MissingDependencyError": "polyserve.errors",
    "PayloadMismatchError": "polyserve.errors",
    "PayloadTooLargeError": "polyserve.errors",
    "PolyserveError": "polyserve.errors",
    "Middleware": "polyserve.pipeline",
    "Principal": "polyserve.identity",
    "Query": "polyserve.params",
    "QueryParams": "polyserve.events.headers",
    "RecordTooLargeError": "polyserve.errors",
    "Registration": "polyserve.routing",
    "RetryExhaustedError": "polyserve.errors",
    "Route": "polyserve.routing",
    "Router": "polyserve.routing",
    "Retry": "polyserve.retry",
    "ScheduleEvent": "polyserve.events.schedule",
    "SetAside": "polyserve.pipeline",
    "StorageAction": "polyserve.events.storage",
    "StorageEvent": "polyserve.events.storage",
    "StoreUnavailableError": "polyserve.errors",
    "StreamRecord": "polyserve.events.stream",
    "StreamWindow": "polyserve.events.window",
    "WebSocketAction": "polyserve.events.websocket",
    "WebSocketEvent": "polyserve.events.websocket",
    "Trigger": "polyserve.routing",
    "UnsupportedEventError": "polyserve.errors",
    "UnsupportedMediaTypeError": "polyserve.errors",
    "idempotent": "polyserve.idempotency.decorator",
}

__all__ = [
    "CORS",
    "App",
    "BatchResult",
    "Body",
    "ChangeType",
    "CloudEvent",
    "ConfigurationError",
    "Context",
    "ContextLogger",
    "CorruptRecordError",
    "Depends",
    "Event",
    "EventError",
    "EventValidationError",
    "FieldError",
    "Header",
    "Headers",
    "HttpError",
    "HttpRequest",
    "HttpResponse",
    "IdempotencyError",
    "InProgressError",
    "InvalidHeaderError",
    "ItemFailure",
    "KeyMissingError",
    "MalformedEventError",
    "Message",
    "Middleware",
    "MissingDependencyError",
    "PayloadMismatchError",
    "PayloadTooLargeError",
    "PolyserveError",
    "Principal",
    "Query",
    "QueryParams",
    "RecordTooLargeError",
    "Registration",
    "Retry",
    "RetryExhaustedError",
    "Route",
    "Router",
    "ScheduleEvent",
    "SetAside",
    "StorageAction",
    "StorageEvent",
    "StoreUnavailableError",
    "StreamRecord",
    "StreamWindow",
    "Trigger",
    "UnsupportedEventError",
    "UnsupportedMediaTypeError",
    "WebSocketAction",
    "WebSocketEvent",
    "idempotent",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'polyserve' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
