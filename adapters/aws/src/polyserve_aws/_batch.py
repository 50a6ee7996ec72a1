"""Batch helpers shared by the AWS sources.

Lambda reads ``batchItemFailures`` only when the event source mapping lists
``ReportBatchItemFailures`` in ``FunctionResponseTypes``; without it, a returned
response counts as success for the whole batch.
"""

from __future__ import annotations

from polyserve.adapter import Batch, Event
from polyserve.batch import BatchResult

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from polyserve.routing import Trigger
    from polyserve.tracing import TraceContext

__all__ = ["batch_response", "one_or_ordered", "raise_first_failure"]


def batch_response(result: BatchResult) -> dict[str, list[dict[str, str]]]:
    """``{"batchItemFailures": [{"itemIdentifier": id}, ...]}`` for the records to redeliver.

    An empty list reports the whole batch processed. For streams, Lambda resumes at the
    lowest sequence number listed.
    """
    return {"batchItemFailures": [{"itemIdentifier": f.item_id} for f in result.failed]}


def one_or_ordered(
    trigger: Trigger,
    records: Sequence[Any],
    decode: Callable[[Any], tuple[str, object]],
    item_id: Callable[[Any], str],
    trace_of: Callable[[Any], TraceContext | None] | None = None,
) -> Event | Batch:
    """The event of an asynchronous invocation's one record (SNS, S3), or all of them in order.

    Such services send one record per invocation. Should one send several, they run
    in order, the first failure stopping the rest (``raise_first_failure`` then raises it),
    each continuing the trace ``trace_of(record)`` reads (the invocation's trace reads
    a single record's).

    Raises:
        MalformedEventError: the one record cannot be read.
    """
    if len(records) == 1:
        name, event = decode(records[0])
        return Event(trigger, name, event)
    return Batch.decode(trigger, records, decode, item_id=item_id, ordered=True, trace_of=trace_of)


def raise_first_failure(outcome: object) -> None:
    """Raise the error of the first failed record of ``outcome``, if it is a failed batch."""
    if isinstance(outcome, BatchResult) and outcome.failed:
        error = outcome.failed[0].error
        raise error if error is not None else RuntimeError(outcome.failed[0].reason)
