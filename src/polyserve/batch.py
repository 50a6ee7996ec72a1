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

from polyserve._frozen import fast_init, maker
from polyserve.retry import Retry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    # What ``run_batch``'s ``resolve`` gives for a handler: a function of the event,
    # and the failure hook. The function succeeds by returning (``SET_ASIDE`` sets the
    # record aside) and fails by raising. The hook, if any, gets the event and the
    # exception and returns True when it took the event (set aside), False when the
    # record is to be reported failed.
    Call = tuple[Callable[[Any], Any], Callable[[Any, Exception], bool] | None]

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


# Built per batch and per failed record: the fastest way to make them.
_result = maker(BatchResult)
_failure = maker(ItemFailure)


class _Batch:
    """The three outcome lists of a batch being processed, and its stop rules."""

    __slots__ = (
        "context",
        "cutoff",
        "failed",
        "logs_errors",
        "ordered",
        "set_aside",
        "stopped",
        "succeeded",
    )

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
        self.logs_errors: bool | None = None

    def past_cutoff(self, index: int, remaining: int) -> bool:
        """Whether record ``index`` must not start (the deadline is near); logs the stop once.

        The first record always starts.
        """
        if not index or self.cutoff is None or self.context.clock() < self.cutoff:
            return False
        self.stopped = _DEADLINE
        self.context.logger.warning(
            "batch stopped before the deadline; the rest will be redelivered",
            unprocessed=remaining, remaining_time=self.context.remaining_time(),
        )  # fmt: skip
        return True

    def fail(self, item: str, reason: str, exc: BaseException) -> None:
        """Record that ``item`` failed with ``exc``, logged in one line (see ``ContextLogger``)."""
        if isinstance(exc, Retry):
            # A deliberate hand-off, not a crash: no traceback in the log.
            self.context.logger.info(
                "record handed back for redelivery", item_id=item, delay=exc.delay,
                reason=exc.reason,
            )  # fmt: skip
            reason = f"retry requested: {exc.reason}" if exc.reason else "retry requested"
            self.failed.append(_failure(item, reason, exc.with_traceback(None), exc.delay))
        else:
            if self.logs_errors is None:  # asked once a batch: is anybody listening
                self.logs_errors = self.context.logs_at(40)
            if self.logs_errors:
                # The error and the frame that raised it, not the traceback (unless the
                # logger is at DEBUG): formatting one costs more than a batch of records.
                self.context.logger.error(f"record {reason}", exc=exc, item_id=item)
            # The traceback holds every frame down to the handler's, and those hold
            # this batch: a reference cycle per failure, left to the garbage collector
            # and keeping the whole batch alive until it runs. Where it was raised is logged.
            self.failed.append(_failure(item, reason, exc.with_traceback(None), None))
        if self.ordered:
            self.stopped = _ORDER_BROKEN

    def result(self) -> BatchResult:
        return _result(tuple(self.succeeded), tuple(self.failed), tuple(self.set_aside))


def _ident(item_id: Callable[[R], str], record: R, index: int) -> str:
    # The id a record is reported by; its position when even that cannot be read.
    try:
        ident = item_id(record)
    except Exception:
        return str(index)
    return ident if ident.__class__ is str else str(ident)


def run_batch(
    records: Sequence[R],
    resolve: Callable[[str, Any], Call],
    context: Context,
    *,
    decode: Callable[[R], tuple[str, object]] | None = None,
    decoded: Sequence[tuple[str, object] | BaseException] | None = None,
    item_id: Callable[[R], str],
    ordered: bool = False,
    deadline_margin: float = 1.0,
) -> BatchResult:
    """Decode and handle each record; see the module docstring for the rules.

    ``resolve(name, event)`` finds the handler for a decoded record. Its answer is
    reused for the following records of the same name and event class, so a batch
    resolves its handler once rather than per record. When it raises (no handler is
    registered, say), that record fails and the next one resolves again.

    Records are decoded by ``decode``, one at a time, or come ``decoded`` already:
    one ``(name, event)`` pair per record, or the exception that kept a record from
    being decoded.
    """
    if (decode is None) is (decoded is None):
        raise TypeError("give either decode or decoded")
    batch = _Batch(context, ordered, deadline_margin)
    succeeded_append, set_aside = batch.succeeded.append, batch.set_aside
    count = len(records)
    cutoff, clock = batch.cutoff, context.clock
    # The handler of the records being handled, kept while their name and event
    # class stay the same (in a batch from one queue or stream, for all of them).
    current_name: str | None = None
    current_class: type | None = None
    call: Callable[[Any], Any] = _unresolved
    on_failure: Callable[[Any, Exception], bool] | None = None
    # The loop runs once per record: what every record does is written out here,
    # and what only some do (failures, the deadline) is in _Batch's methods.
    for index, record in enumerate(records):
        try:
            ident = item_id(record)
        except Exception:
            ident = str(index)
        if ident.__class__ is not str:
            ident = str(ident)
        if cutoff is not None and index and clock() >= cutoff and batch.stopped is None:
            batch.past_cutoff(index, count - index)
        if batch.stopped is not None:
            batch.failed.append(_failure(ident, batch.stopped, None, None))
            continue
        if decoded is not None:
            pair = decoded[index]
            if pair.__class__ is not tuple:  # the exception that kept it from decoding
                batch.fail(ident, "could not be decoded", pair)  # type: ignore[arg-type]
                continue
            name, event = pair
        else:
            try:
                name, event = decode(record)  # type: ignore[misc]  # given, checked above
            except Exception as exc:
                batch.fail(ident, "could not be decoded", exc)
                continue
        if event.__class__ is not current_class or name != current_name:
            try:
                call, on_failure = resolve(name, event)
            except Exception as exc:
                current_class = None
                batch.fail(ident, "handler failed", exc)
                continue
            current_name, current_class = name, event.__class__
        try:
            outcome = call(event)
        except Exception as exc:
            if on_failure is not None and on_failure(event, exc):
                set_aside.append(ident)
            else:
                batch.fail(ident, "handler failed", exc)
        else:
            if outcome is SET_ASIDE:
                set_aside.append(ident)
            else:
                succeeded_append(ident)
    return batch.result()


def _unresolved(event: Any) -> Any:
    raise AssertionError("no handler resolved")  # never called: resolve runs first


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

    def resolve(name: str, event: Any) -> Call:
        return (lambda event: handle(name, event)), None

    return run_batch(
        records, resolve, context, decode=decode, item_id=item_id, ordered=ordered,
        deadline_margin=deadline_margin,
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
    """``process_batch`` with an async ``handle``."""
    batch = _Batch(context, ordered, deadline_margin)
    count = len(records)
    for index, record in enumerate(records):
        ident = _ident(item_id, record, index)
        if batch.stopped is None and batch.cutoff is not None:
            batch.past_cutoff(index, count - index)
        if batch.stopped is not None:
            batch.failed.append(_failure(ident, batch.stopped, None, None))
            continue
        try:
            name, event = decode(record)
        except Exception as exc:
            batch.fail(ident, "could not be decoded", exc)
            continue
        try:
            outcome = await handle(name, event)
        except Exception as exc:
            batch.fail(ident, "handler failed", exc)
        else:
            (batch.set_aside if outcome is SET_ASIDE else batch.succeeded).append(ident)
    return batch.result()
