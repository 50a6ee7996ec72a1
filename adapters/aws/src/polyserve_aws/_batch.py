"""The partial batch response shared by SQS, Kinesis and DynamoDB Streams.

Lambda reads ``batchItemFailures`` only when the event source mapping lists
``ReportBatchItemFailures`` in ``FunctionResponseTypes``; without it, a returned
response counts as success for the whole batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polyserve.batch import BatchResult

__all__ = ["batch_response"]


def batch_response(result: BatchResult) -> dict[str, list[dict[str, str]]]:
    """``{"batchItemFailures": [{"itemIdentifier": id}, ...]}`` for the records to redeliver.

    An empty list reports the whole batch processed. For streams, Lambda resumes at the
    lowest sequence number listed.
    """
    return {"batchItemFailures": [{"itemIdentifier": f.item_id} for f in result.failed]}
