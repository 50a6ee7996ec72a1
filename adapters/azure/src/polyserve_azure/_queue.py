"""Storage Queue trigger: one ``azure.functions.QueueMessage`` per invocation -> ``Message``.

A failure raises, so the host makes the message visible again; after the
``maxDequeueCount`` of host.json (5 by default) it moves to ``<queue>-poison``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.adapter import translating
from polyserve.events import Message
from polyserve_azure import _wire

if TYPE_CHECKING:
    from polyserve.context import Context
    from polyserve_azure._types import NativeQueueMessage

__all__ = ["matches", "read"]


def matches(raw: object) -> bool:
    """True for an object shaped like ``azure.functions.QueueMessage``."""
    return hasattr(raw, "dequeue_count") and hasattr(raw, "get_body")


def read(msg: NativeQueueMessage, context: Context, *, source: str) -> Message:
    """The message from the queue whose logical name is ``source``.

    Storage Queue messages carry no attributes, ordering key or subject.

    Raises:
        MalformedEventError: the id, dequeue count, insertion time or body is missing
            or mistyped.
    """
    with translating("queue message"):
        return Message(
            id=_wire.text(msg.id, "queue message id"),
            body=_wire.body(msg.get_body(), "queue message body"),
            attempt=_wire.attempt(msg.dequeue_count, "queue message dequeue_count"),
            enqueued_at=_wire.utc(msg.insertion_time, "queue message insertion_time"),
            source=source,
            raw=msg,
        )
