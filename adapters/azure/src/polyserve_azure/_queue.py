"""Storage Queue trigger: one ``azure.functions.QueueMessage`` per invocation -> ``Message``.

A failure raises, so the host makes the message visible again; after the
``maxDequeueCount`` of host.json (5 by default) it moves to ``<queue>-poison``.
A message that ``polyserve.outbound`` sent on Azure is unwrapped
from its envelope (``_envelope``): the handler sees what was sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import translating
from polyserve.events import Message
from polyserve_azure import _envelope, _wire

if TYPE_CHECKING:
    from polyserve.context import Context
    from polyserve.tracing import TraceContext
    from polyserve_azure._types import NativeQueueMessage

__all__ = ["envelope_trace", "matches", "read"]


def matches(raw: object) -> bool:
    """True for an object shaped like ``azure.functions.QueueMessage``."""
    return hasattr(raw, "dequeue_count") and hasattr(raw, "get_body")


def read(msg: NativeQueueMessage, context: Context, *, source: str) -> Message:
    """The message from the queue whose logical name is ``source``.

    Storage Queue messages carry no attributes, ordering key or subject, except those
    of an envelope, whose trace the context then continues.

    Raises:
        MalformedEventError: the id, dequeue count, insertion time or body is missing
            or mistyped.
    """
    with translating("queue message"):
        body = _wire.body(msg.get_body(), "queue message body")
        attributes: dict[str, str] = {}
        wrapped = _envelope.unwrap(body)
        if wrapped is not None:
            body, attributes = wrapped.body, dict(wrapped.attributes)
            if "traceparent" in attributes:
                context.trace_from(envelope_trace, (attributes, context.raw))
        return Message(
            id=_wire.text(msg.id, "queue message id"),
            body=body,
            attributes=attributes,
            attempt=_wire.attempt(msg.dequeue_count, "queue message dequeue_count"),
            enqueued_at=_wire.utc(msg.insertion_time, "queue message insertion_time"),
            source=source,
            raw=msg,
        )


def envelope_trace(source: tuple[dict[str, str], Any]) -> TraceContext | None:
    """The producer's trace an envelope carried, else the invocation's; never raises."""
    from polyserve.tracing import from_traceparent
    from polyserve_azure._tracing import invocation_trace

    attributes, native = source
    found = from_traceparent(attributes.get("traceparent"), attributes.get("tracestate"))
    return found if found is not None else invocation_trace(native)
