"""Batches of records handled one by one, with partial failures reported back.

Every record ends in exactly one of three outcomes:

* **succeeded**: handled; the platform may delete it.
* **failed**: reported back so the platform redelivers it. That covers a handler
  that raised, a record that could not be decoded, a handler that raised
  ``Retry`` (``ItemFailure.retry_delay`` carries its delay), and records never
  started. A failed record is never acknowledged silently.
* **set aside**: a poison message that ``on_poison`` took care of; acknowledged
  like a success, and counted apart so nobody mistakes it for one.

For ordered sources (FIFO queues, streams) the first failure stops the batch,
and that record and every one after it are reported, so order is kept. When the
invocation's deadline comes within ``deadline_margin`` seconds, the batch stops
too, and every record not yet started is reported failed (``"not processed:
deadline"``), so it is redelivered rather than lost when the platform stops the
invocation. The first record is always started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from polyserve._frozen import fast_init
from polyserve.retry import Retry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

    from polyserve.context import Context

__all__ = [
    "SET_ASIDE",
    "BatchResult",
    "ItemFailure",
    "process_batch",
    "process_batch_async",
]

R = TypeVar("R")

_ORDER_BROKEN = "not processed: an earlier record in order failed"
_DEADLINE = "not processed: deadline"


class _SetAside:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SET_ASIDE"


SET_ASIDE: Final = _SetAside()
"""Returned by a ``handle`` callable: the record was set aside (acknowledged, not handled)."""


@fast_init
@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One record that must be redelivered, and why.

    ``retry_delay`` is the delay a handler asked for by raising ``Retry(delay=...)``;
    adapters whose platform takes a per-message delay pass it on.
    """

    item_id: str
    reason: str
    error: BaseException | None = None
    retry_delay: float | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of a batch: ids that succeeded, records that failed, ids set aside.

    The three never overlap, and together they hold every record of the batch.
    Adapters acknowledge ``succeeded`` and ``set_aside`` and report ``failed``.
    """

    succeeded: tuple[str, ...]
    failed: tuple[ItemFailure, ...]
    set_aside: tuple[str, ...] = ()

    @property
    def failed_ids(self) -> list[str]:
        """The ids of the failed records, in batch order."""
        return [f.item_id for f in self.failed]

    @property
    def acknowledged(self) -> tuple[str, ...]:
        """Every id the platform may delete: ``succeeded`` and ``set_aside``, in that order."""
        return self.succeeded + self.set_aside

    @property
    def is_complete_success(self) -> bool:
        """True when no record failed (set-aside records count as acknowledged)."""
        return not self.failed


class _Collector:
    __slots__ = ("context", "cutoff", "failed", "ordered", "set_aside", "stopped", "succeeded")

    def __init__(self, context: Context, ordered: bool, margin: float) -> None:
        self.context = context
        self.ordered = ordered
        # The clock time after which no further record starts (None: no deadline).
        deadline = context.deadline
        self.cutoff = None if deadline is None else deadline - margin
        self.succeeded: list[str] = []
        self.failed: list[ItemFailure] = []
        self.set_aside: list[str] = []
        self.stopped: str | None = None  # why the rest of the batch is not started

    def done(self, item: str, outcome: object) -> None:
        (self.set_aside if outcome is SET_ASIDE else self.succeeded).append(item)

    def fail(self, item: str, reason: str, exc: BaseException) -> None:
        if isinstance(exc, Retry):
            # A deliberate hand-off, not a crash: no traceback in the log.
            self.context.logger.info(
                "record handed back for redelivery", item_id=item, delay=exc.delay,
                reason=exc.reason,
            )  # fmt: skip
            reason = f"retry requested: {exc.reason}" if exc.reason else "retry requested"
            self.failed.append(ItemFailure(item, reason, exc, exc.delay))
        else:
            self.context.logger.exception(f"record {reason}", exc, item_id=item)
            self.failed.append(ItemFailure(item, reason, exc))
        if self.ordered:
            self.stopped = _ORDER_BROKEN

    def result(self) -> BatchResult:
        return BatchResult(tuple(self.succeeded), tuple(self.failed), tuple(self.set_aside))


def _safe_id(item_id: Callable[[R], str], record: R, index: int) -> str:
    try:
        return str(item_id(record))
    except Exception:
        return str(index)


def _pending(
    records: Sequence[R],
    out: _Collector,
    decode: Callable[[R], tuple[str, object]],
    item_id: Callable[[R], str],
) -> Iterator[tuple[str, str, object]]:
    # Lazy on purpose: a failure reported by the caller stops an ordered batch
    # before the next record is decoded, and the deadline is checked just
    # before each record starts.
    cutoff, clock = out.cutoff, out.context.clock
    for index, record in enumerate(records):
        ident = _safe_id(item_id, record, index)
        if out.stopped is None and index and cutoff is not None and clock() >= cutoff:
            out.stopped = _DEADLINE
            out.context.logger.warning(
                "batch stopped before the deadline; the rest will be redelivered",
                unprocessed=len(records) - index, remaining_time=out.context.remaining_time(),
            )  # fmt: skip
        if out.stopped is not None:
            out.failed.append(ItemFailure(ident, out.stopped))
            continue
        try:
            name, event = decode(record)
        except Exception as exc:
            out.fail(ident, "could not be decoded", exc)
            continue
        yield ident, name, event


def process_batch(
    records: Sequence[R],
    handle: Callable[[str, object], Any],
    context: Context,
    *,
    decode: Callable[[R], tuple[str, object]],
    item_id: Callable[[R], str],
    ordered: bool = False,
    deadline_margin: float = 1.0,
) -> BatchResult:
    """Decode and handle each record; see the module docstring for the rules.

    ``handle(name, event)`` succeeds by returning, fails by raising, and sets the
    record aside by returning ``SET_ASIDE``.
    """
    out = _Collector(context, ordered, deadline_margin)
    for ident, name, event in _pending(records, out, decode, item_id):
        try:
            outcome = handle(name, event)
        except Exception as exc:
            out.fail(ident, "handler failed", exc)
        else:
            out.done(ident, outcome)
    return out.result()


async def process_batch_async(
    records: Sequence[R],
    handle: Callable[[str, object], Awaitable[Any]],
    context: Context,
    *,
    decode: Callable[[R], tuple[str, object]],
    item_id: Callable[[R], str],
    ordered: bool = False,
    deadline_margin: float = 1.0,
) -> BatchResult:
    """``process_batch`` with an async ``handle``."""
    out = _Collector(context, ordered, deadline_margin)
    for ident, name, event in _pending(records, out, decode, item_id):
        try:
            outcome = await handle(name, event)
        except Exception as exc:
            out.fail(ident, "handler failed", exc)
        else:
            out.done(ident, outcome)
    return out.result()
