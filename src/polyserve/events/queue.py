"""Messages from queues, topics and log streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyserve._frozen import fast_init
from polyserve.events._body import parse_json

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

__all__ = ["Message"]


@fast_init
@dataclass(frozen=True, slots=True)
class Message:
    """One message from a queue, a topic subscription or a log stream.

    ``attempt`` counts deliveries, starting at 1 (SQS ApproximateReceiveCount,
    Azure dequeue/delivery count, Pub/Sub delivery attempt, Workers attempts).
    ``group_key`` is the ordering key where the source has one (FIFO group,
    session id, partition key, ordering key). ``source`` is the logical name of
    the queue, topic or stream. ``raw`` is the provider's native record.
    Where the platform carries the producer's trace with a message (SQS
    ``AWSTraceHeader``, a ``traceparent`` attribute), the handler's
    ``Context.trace_id`` continues it.
    """

    id: str
    body: bytes = b""
    attributes: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1
    enqueued_at: dt.datetime | None = None
    source: str = ""
    group_key: str | None = None
    subject: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes are replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            MalformedEventError: code ``invalid_json`` when the body is not JSON.
        """
        return parse_json(self.body, "message body")
