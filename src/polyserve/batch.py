"""Batches of records handled one by one, with partial failures reported back.

Every record ends in exactly one of three outcomes:

* **succeeded**: handled; the platform may delete it.
* **failed**: reported back so the platform redelivers it. That covers a handler
  that raised, a record that could not be decoded, a handler that raised
  ``Retry`` (``ItemFailure.retry_delay`` carries its delay), and records never
  started. A failed record is never acknowledged silently.
* **set aside**: an event its handler (or an exception handler, or ``on_poison``)
  set aside with ``SetAside``; acknowledged like a success, and counted apart so
  nobody mistakes it for one.

For ordered sources (FIFO queues, streams) the first failure stops the batch,
and that record and every one after it are reported, so order is kept. Where
order holds only within a group (an SQS FIFO message group), ``group_of`` names
each record's group and a failure stops only its own group: the later records
of that group are reported, and the other groups carry on. A record whose group
cannot be read stops the whole batch when it fails, and is not started once any
group has failed, since it may belong to that group. When the
invocation's deadline comes within ``deadline_margin`` seconds, the batch stops
too, and every record not yet started is reported failed (``"not processed:
deadline"``), so it is redelivered rather than lost when the platform stops the
invocation. The first record is always started.

There is one loop, ``run_batch``, a coroutine: async entry points await it and
synchronous ones drive it with ``polyserve.pipeline.run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from polyserve._frozen import fast_init
from polyserve.pipeline import SetAside, run
from polyserve.retry import Retry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from polyserve.context import Context

__all__ = [
    "SET_ASIDE",
    "BatchResult",
    "ItemFailure",
    "process_batch",
    "process_batch_async",
    "run_batch",
]

R = TypeVar("R")

_ORDER_BROKEN = "not processed: an earlier record in order failed"
_GROUP_BROKEN = "not processed: an earlier record of its group failed"
_UNKNOWN_GROUP = object()  # the group of a record whose group cannot be read
_DEADLINE = "not processed: deadline"

SET_ASIDE = SetAside()
"""A ready-made ``SetAside()``, for ``handle`` callables of ``process_batch``."""


@fast_init
@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One record that must be redelivered, and why.

    ``error`` is the exception that failed it, without its traceback: that went to
    the log, and keeping it would keep every frame of the batch alive.
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


class _Batch:
    """The three outcome lists of a batch being processed, and its stop rules."""

    __slots__ = (
        "broken", "context", "cutoff", "failed", "group", "ordered", "set_aside", "stopped",
        "succeeded",
    )  # fmt: skip

    def __init__(self, context: Context, ordered: bool, margin: float, grouped: bool) -> None:
        self.context = context
        self.ordered = ordered
        # With groups, the groups a failure stopped, and the group of the current record.
        self.broken: set[object] | None = set() if grouped else None
        self.group: object = None
        # The clock time after which no further record starts (None: no deadline).
        deadline = context.deadline
        self.cutoff = None if deadline is None else deadline - margin
        self.succeeded: list[str] = []
        self.failed: list[ItemFailure] = []
        self.set_aside: list[str] = []
        self.stopped: str | None = None  # why the rest of the batch is not started

    def check_deadline(self, index: int, remaining: int) -> None:
        """Stop the batch before record ``index`` when the deadline is near; logs once.

        The first record always starts.
        """
        if (
            not index
            or self.stopped is not None
            or self.cutoff is None
            or self.context.clock() < self.cutoff
        ):
            return
        self.stopped = _DEADLINE
        self.context.logger.warning(
            "batch stopped before the deadline; the rest will be redelivered",
            unprocessed=remaining, remaining_time=self.context.remaining_time(),
        )  # fmt: skip

    def fail(self, item: str, reason: str, exc: BaseException) -> None:
        """Record that ``item`` failed with ``exc``, logged in one line (see ``ContextLogger``)."""
        logger = self.context.logger
        if isinstance(exc, Retry):
            # A deliberate hand-off, not a crash: no traceback in the log.
            logger.info(
                "record handed back for redelivery", item_id=item, delay=exc.delay,
                reason=exc.reason,
            )  # fmt: skip
            reason = f"retry requested: {exc.reason}" if exc.reason else "retry requested"
            delay = exc.delay
        else:
            if self.context.logs_at(40):
                # The error and the frame that raised it, not the traceback (unless the
                # logger is at DEBUG): formatting one costs more than a batch of records.
                logger.error(f"record {reason}", exc=exc, item_id=item)
            delay = None
        # The traceback holds every frame down to the handler's, and those hold this
        # batch: a reference cycle per failure, left to the garbage collector and
        # keeping the whole batch alive until it runs. Where it was raised is logged.
        self.failed.append(ItemFailure(item, reason, exc.with_traceback(None), delay))
        if self.broken is not None:
            if self.group is _UNKNOWN_GROUP:
                self.stopped = _ORDER_BROKEN
            self.broken.add(self.group)
        elif self.ordered:
            self.stopped = _ORDER_BROKEN

    def group_broken(self, group: object) -> bool:
        """Whether a record of ``group`` must wait, an earlier record of its group having failed."""
        broken = self.broken
        if not broken:
            return False
        return group is _UNKNOWN_GROUP or group in broken

    def result(self) -> BatchResult:
        return BatchResult(tuple(self.succeeded), tuple(self.failed), tuple(self.set_aside))


def _group(group_of: Callable[[R], object], record: R) -> object:
    # A record's group; _UNKNOWN_GROUP when it cannot be read.
    try:
        return group_of(record)
    except Exception:
        return _UNKNOWN_GROUP


def _ident(item_id: Callable[[R], str], record: R, index: int) -> str:
    # The id a record is reported by; its position when even that cannot be read.
    try:
        ident = item_id(record)
    except Exception:
        return str(index)
    return ident if isinstance(ident, str) else str(ident)


async def run_batch(
    records: Sequence[R],
    handle: Callable[[str, Any, R], Awaitable[Any]],
    context: Context,
    *,
    decode: Callable[[R], tuple[str, object]] | None = None,
    decoded: Sequence[tuple[str, object] | BaseException] | None = None,
    item_id: Callable[[R], str],
    ordered: bool = False,
    group_of: Callable[[R], object] | None = None,
    deadline_margin: float = 1.0,
) -> BatchResult:
    """Decode and handle each record; see the module docstring for the rules.

    ``handle(name, event, record)`` succeeds by returning, sets the record aside by
    returning a ``SetAside``, and fails it by raising. Records are decoded by ``decode``, one
    at a time, or come ``decoded`` already: one ``(name, event)`` pair per record,
    or the exception that kept a record from being decoded. With ``ordered``,
    ``group_of(record)`` (any hashable value) limits a failure's stop to its group.

    Raises:
        TypeError: neither or both of ``decode`` and ``decoded`` are given.
    """
    if (decode is None) is (decoded is None):
        raise TypeError("give either decode or decoded")
    if not ordered:
        group_of = None
    batch = _Batch(context, ordered, deadline_margin, group_of is not None)
    count = len(records)
    for index, record in enumerate(records):
        ident = _ident(item_id, record, index)
        batch.check_deadline(index, count - index)
        if batch.stopped is not None:
            batch.failed.append(ItemFailure(ident, batch.stopped))
            continue
        if group_of is not None:
            batch.group = _group(group_of, record)
            if batch.group_broken(batch.group):
                batch.failed.append(ItemFailure(ident, _GROUP_BROKEN))
                continue
        try:
            if decoded is not None:
                pair = decoded[index]
                if isinstance(pair, BaseException):
                    raise pair
                name, event = pair
            else:
                name, event = decode(record)  # type: ignore[misc]  # given, checked above
        except Exception as exc:
            batch.fail(ident, "could not be decoded", exc)
            continue
        try:
            outcome = await handle(name, event, record)
        except Exception as exc:
            batch.fail(ident, "handler failed", exc)
            continue
        (batch.set_aside if isinstance(outcome, SetAside) else batch.succeeded).append(ident)
    return batch.result()


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
    """``run_batch`` with a synchronous ``handle``, from synchronous code."""

    async def each(name: str, event: object, record: R) -> Any:
        return handle(name, event)

    return run(
        run_batch(
            records, each, context, decode=decode, item_id=item_id, ordered=ordered,
            deadline_margin=deadline_margin,
        )
    )  # fmt: skip


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
    """``run_batch`` with an async ``handle``, from async code."""

    async def each(name: str, event: object, record: R) -> Any:
        return await handle(name, event)

    return await run_batch(
        records, each, context, decode=decode, item_id=item_id, ordered=ordered,
        deadline_margin=deadline_margin,
    )  # fmt: skip
