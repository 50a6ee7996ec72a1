"""The partial batch response shared by SQS, Kinesis and DynamoDB Streams.

Lambda reads ``batchItemFailures`` only when the event source mapping lists
``ReportBatchItemFailures`` in ``FunctionResponseTypes``; without it, a returned
response counts as success for the whole batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from polyserve.app import App
    from polyserve.batch import BatchResult
    from polyserve.context import Context
    from polyserve.events import Message, StreamRecord
    from polyserve.routing import Trigger

__all__ = ["batch_response", "handle_records"]


def handle_records(
    app: App,
    trigger: Trigger,
    records: list[Any],
    context: Context,
    *,
    to_event: Callable[[Any, Mapping[str, str]], Message | StreamRecord],
    names: Mapping[str, str],
    item_id: Callable[[Any], str],
    ordered: bool,
) -> BatchResult:
    """Decode and handle each record of an SQS, Kinesis or DynamoDB Streams batch."""

    def decode(record: Any) -> tuple[str, object]:
        event = to_event(record, names)
        return event.source, event

    return app.handle_batch(
        trigger, records, context, decode=decode, item_id=item_id, ordered=ordered
    )


def batch_response(result: BatchResult) -> dict[str, list[dict[str, str]]]:
    """``{"batchItemFailures": [{"itemIdentifier": id}, ...]}`` for the records to redeliver.

    An empty list reports the whole batch processed. For streams, Lambda resumes at the
    lowest sequence number listed.
    """
    return {"batchItemFailures": [{"itemIdentifier": f.item_id} for f in result.failed]}
