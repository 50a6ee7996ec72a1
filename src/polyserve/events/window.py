"""Tumbling windows over a stream: a batch of records and the state aggregated so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyserve._frozen import fast_init

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from polyserve.events.queue import Message
    from polyserve.events.stream import StreamRecord

__all__ = ["StreamWindow"]


@fast_init
@dataclass(frozen=True, slots=True)
class StreamWindow:
    """One delivery of a tumbling window: its records, and the state carried so far.

    A ``@app.stream(name, window=True)`` handler gets one ``StreamWindow`` per
    delivery instead of one call per record, and returns the new state (a JSON
    object, at most 1 MB on Lambda), which the platform hands to the next delivery
    of the same window; returning ``None`` keeps ``state`` as it is. ``state`` is
    empty at the start of each window.

    ``records`` are ``Message`` values (Kinesis) or ``StreamRecord`` values
    (DynamoDB Streams), in order; the last delivery of a window may have none.
    ``is_final`` marks that last delivery: the state is dropped after it, so it is
    where an aggregate is written out. ``is_terminated_early`` says the window closed
    before ``end`` (its state grew too large); the next delivery starts with an empty
    state. ``shard`` is the shard the records come from, ``source`` the registration
    name, and ``raw`` the provider's event.
    """

    source: str
    start: dt.datetime
    end: dt.datetime
    records: tuple[Message | StreamRecord, ...] = ()
    state: Mapping[str, Any] = field(default_factory=dict)
    is_final: bool = False
    is_terminated_early: bool = False
    shard: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)
