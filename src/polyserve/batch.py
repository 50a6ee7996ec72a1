"""Batches of records handled one by one, with partial failures reported back.

A record that fails (its handler raised, or it could not be decoded) is
reported so the platform redelivers it; it is never acknowledged silently.
For ordered sources (FIFO queues, streams) the first failure stops the batch,
and that record and every one after it are reported, so order is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

    from polyserve.context import Context

__all__ = ["BatchResult", "ItemFailure", "process_batch", "process_batch_async"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One record that must be redelivered, and why."""

    item_id: str
    reason: str
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of a batch: the ids that succeeded and the records that failed."""

    succeeded: tuple[str, ...]
    failed: tuple[ItemFailure, ...]

    @property
    def failed_ids(self) -> list[str]:
        return [f.item_id for f in self.failed]

    @property
    def is_complete_success(self) -> bool:
        return not self.failed


class _Collector:
    __slots__ = ("context", "failed", "ordered", "stopped", "succeeded")

    def __init__(self, context: Context, ordered: bool) -> None:
        self.context = context
        self.ordered = ordered
        self.succeeded: list[str] = []
        self.failed: list[ItemFailure] = []
        self.stopped = False

    def skip(self, item: str) -> None:
        self.failed.append(ItemFailure(item, "not processed: an earlier record in order failed"))

    def fail(self, item: str, reason: str, exc: BaseException) -> None:
        self.context.logger.exception(f"record {reason}", exc, item_id=item)
        self.failed.append(ItemFailure(item, reason, exc))
        self.stopped = self.ordered

    def result(self) -> BatchResult:
        return BatchResult(tuple(self.succeeded), tuple(self.failed))


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
    # before the next record is decoded.
    for index, record in enumerate(records):
        ident = _safe_id(item_id, record, index)
        if out.stopped:
            out.skip(ident)
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
) -> BatchResult:
    """Decode and handle each record; see the module docstring for the failure rules."""
    out = _Collector(context, ordered)
    for ident, name, event in _pending(records, out, decode, item_id):
        try:
            handle(name, event)
        except Exception as exc:
            out.fail(ident, "handler failed", exc)
        else:
            out.succeeded.append(ident)
    return out.result()


async def process_batch_async(
    records: Sequence[R],
    handle: Callable[[str, object], Awaitable[Any]],
    context: Context,
    *,
    decode: Callable[[R], tuple[str, object]],
    item_id: Callable[[R], str],
    ordered: bool = False,
) -> BatchResult:
    """``process_batch`` with an async ``handle``."""
    out = _Collector(context, ordered)
    for ident, name, event in _pending(records, out, decode, item_id):
        try:
            await handle(name, event)
        except Exception as exc:
            out.fail(ident, "handler failed", exc)
        else:
            out.succeeded.append(ident)
    return out.result()
