"""Kinesis Data Streams.

Recognised by ``Records[0].eventSource == "aws:kinesis"``. Each record becomes a
``Message`` for the ``Trigger.STREAM`` registration named after the stream (from
``eventSourceARN``, or its entry in ``names``): ``data`` base64-decoded is the body,
``partitionKey`` the group key, ``sequenceNumber`` the id and
``approximateArrivalTimestamp`` the enqueue time. Kinesis keeps no delivery count, so
``attempt`` is 1.

Records are handled in order: the first failure stops the batch, and it and every
later record are reported in ``batchItemFailures`` by sequence number, where Lambda
resumes. A record whose ``data`` is not valid base64 fails like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import (
    Batch,
    as_object,
    decode_base64,
    from_epoch,
    optional_text,
    text,
    translating,
)
from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve_aws._batch import batch_response
from polyserve_aws._wire import first_record, logical_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.batch import BatchResult
    from polyserve.context import Context

__all__ = ["is_http", "matches", "message", "to_event", "to_native"]

is_http = False

_WHAT = "Kinesis record"


def matches(raw: dict[str, Any]) -> bool:
    """True for a batch of Kinesis stream records."""
    record = first_record(raw)
    # A tumbling window's batch is ``_window``'s: its answer must carry the state.
    return record is not None and record.get("eventSource") == "aws:kinesis" and "window" not in raw


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Batch:
    """The records, in order, for their streams' registrations."""

    def decode(record: Any) -> tuple[str, object]:
        event = message(record, names)
        return event.source, event

    return Batch.decode(
        Trigger.STREAM, raw["Records"], decode, item_id=_sequence_number, ordered=True
    )


def to_native(result: BatchResult, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """``batchItemFailures`` by sequence number: Lambda resumes at the first one listed."""
    return batch_response(result)


def message(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one Kinesis record.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type, or the
            data is not valid base64 (code ``invalid_base64``).
    """
    with translating(_WHAT):
        record = as_object(record, _WHAT)
        kinesis = as_object(record.get("kinesis"), _WHAT, "kinesis")
        arrived = kinesis.get("approximateArrivalTimestamp")
        return Message(
            id=text(kinesis, "sequenceNumber", _WHAT),
            body=decode_base64(kinesis.get("data"), f"{_WHAT} data"),
            enqueued_at=None if arrived is None else from_epoch(arrived, f"{_WHAT} arrival"),
            source=logical_name(text(record, "eventSourceARN", _WHAT), names),
            group_key=optional_text(kinesis, "partitionKey", _WHAT),
            raw=record,
        )


def _sequence_number(record: dict[str, Any]) -> str:
    return str(record["kinesis"]["sequenceNumber"])
