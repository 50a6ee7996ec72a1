"""Event Hubs trigger: a batch of ``azure.functions.EventHubEvent`` -> ``Message`` each.

The function binds with ``cardinality="many"`` and ``dataType="binary"`` (so
bodies that are not JSON arrive intact) and handles the batch in order. The host
checkpoints a partition after each invocation whether it succeeded or not, so a
failed batch is redelivered only through the function's retry policy; see the
Azure docs page for the semantics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from polyserve.adapter import translating
from polyserve.errors import MalformedEventError
from polyserve.events import Message
from polyserve_azure import _wire
from polyserve_azure._tracing import properties_trace

if TYPE_CHECKING:
    from polyserve.tracing import TraceContext
    from polyserve_azure._types import NativeEventHubEvent

__all__ = ["item_id", "matches", "read", "trace_of"]


def matches(raw: object) -> bool:
    """True for a batch (a list) of events; each event is checked when it is decoded."""
    return isinstance(raw, list)


def read(event: NativeEventHubEvent, index: int, *, source: str, attempt: int = 1) -> Message:
    """Event ``index`` of a batch from the hub whose logical name is ``source``.

    ``id`` is the sequence number (unique within one partition), ``group_key`` the
    partition key, ``attributes`` the event's application properties as strings.
    Event Hubs counts no deliveries: ``attempt`` is the run of the function's retry
    policy (1, then 2 on its first retry, ...), which the caller reads from the
    invocation context.

    Raises:
        MalformedEventError: the sequence number, enqueued time, properties or body
            is missing or mistyped.
    """
    with translating("Event Hubs event"):
        return Message(
            id=_sequence(event.sequence_number),
            body=_wire.body(event.get_body(), "Event Hubs event body"),
            attributes=_wire.properties(_properties(event, index), "Event Hubs properties"),
            attempt=attempt,
            enqueued_at=_wire.utc(event.enqueued_time, "Event Hubs enqueued_time"),
            source=source,
            group_key=_wire.optional_text(event.partition_key, "Event Hubs partition_key"),
            raw=event,
        )


def item_id(event: NativeEventHubEvent, index: int) -> str:
    """The id a batch failure reports: the sequence number, or the position if there is none."""
    try:
        return _sequence(event.sequence_number)
    except (AttributeError, MalformedEventError):
        return f"#{index}"


def trace_of(event: NativeEventHubEvent, index: int) -> TraceContext | None:
    """The producer's trace in event ``index``'s ``Diagnostic-Id`` / ``traceparent``; never raises."""
    try:
        return properties_trace(_properties(event, index))
    except AttributeError:
        return None


def _sequence(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEventError("Event Hubs event has no integer sequence_number")
    return str(value)


def _properties(event: NativeEventHubEvent, index: int) -> object:
    # A batch shares one trigger metadata: "PropertiesArray" holds each event's
    # properties by position; a single event has "Properties".
    metadata = event.metadata
    if not isinstance(metadata, Mapping):
        return None
    many = metadata.get("PropertiesArray")
    if isinstance(many, list):
        return many[index] if index < len(many) else None
    return metadata.get("Properties")
