"""Service Bus queue and topic triggers: one ``azure.functions.ServiceBusMessage`` -> ``Message``.

A failure raises, so the host abandons the message and Service Bus redelivers it;
after the entity's ``MaxDeliveryCount`` (10 by default) it is dead-lettered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.adapter import translating
from polyserve.events import Message
from polyserve_azure import _wire

if TYPE_CHECKING:
    from polyserve.context import Context
    from polyserve_azure._types import NativeServiceBusMessage

__all__ = ["matches", "properties_of", "read"]


def matches(raw: object) -> bool:
    """True for an object shaped like ``azure.functions.ServiceBusMessage``."""
    return hasattr(raw, "delivery_count") and hasattr(raw, "message_id")


def read(msg: NativeServiceBusMessage, context: Context, *, source: str) -> Message:
    """The message from the queue or topic whose logical name is ``source``.

    ``attributes`` are the application properties (the worker's older
    ``user_properties`` when those are empty), as strings; ``group_key`` is the
    session id; ``subject`` is the subject (formerly label).

    Raises:
        MalformedEventError: the message id, delivery count, enqueued time, properties
            or body is missing or mistyped.
    """
    with translating("Service Bus message"):
        properties = properties_of(msg)
        return Message(
            id=_wire.text(msg.message_id, "Service Bus message_id"),
            body=_wire.body(msg.get_body(), "Service Bus message body"),
            attributes=_wire.properties(properties, "Service Bus application_properties"),
            attempt=_wire.attempt(msg.delivery_count, "Service Bus delivery_count"),
            enqueued_at=_wire.utc(msg.enqueued_time_utc, "Service Bus enqueued_time_utc"),
            source=source,
            group_key=_wire.optional_text(msg.session_id, "Service Bus session_id"),
            subject=_wire.optional_text(msg.subject or msg.label, "Service Bus subject"),
            raw=msg,
        )


def properties_of(msg: NativeServiceBusMessage) -> object:
    """The application properties (the worker's older ``user_properties`` when those are empty)."""
    return getattr(msg, "application_properties", None) or getattr(msg, "user_properties", None)
