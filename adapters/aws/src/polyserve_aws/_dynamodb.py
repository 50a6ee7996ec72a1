"""DynamoDB Streams.

Recognised by ``Records[0].eventSource == "aws:dynamodb"``. Each record becomes a
``StreamRecord`` for the ``Trigger.STREAM`` registration named after the table (from
``eventSourceARN``, or its entry in ``names``). Records are handled in order: the first
failure stops the batch, and it and every later record are reported in
``batchItemFailures`` by ``SequenceNumber``, where Lambda resumes.

``INSERT``/``MODIFY``/``REMOVE`` become the change type. ``Keys``, ``OldImage`` and
``NewImage`` are turned from AttributeValue JSON into plain values:

====================  ===========================================================
``S``                 ``str``
``N``                 ``int`` when written without a fraction or exponent, else ``float``
``B``                 ``bytes`` (base64-decoded)
``BOOL`` / ``NULL``   ``bool`` / ``None``
``SS``/``NS``/``BS``  ``list`` of the above
``M`` / ``L``         ``dict`` / ``list``, converted recursively
====================  ===========================================================

A number with more precision than a ``float`` keeps its exact text in ``raw``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import (
    Batch,
    as_object,
    decode_base64,
    from_epoch,
    malformed,
    optional_text,
    text,
)
from polyserve.errors import MalformedEventError
from polyserve.events import ChangeType, StreamRecord
from polyserve.routing import Trigger
from polyserve_aws._batch import batch_response
from polyserve_aws._wire import first_record, logical_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.batch import BatchResult
    from polyserve.context import Context

__all__ = ["is_http", "matches", "plain_value", "stream_record", "to_event", "to_native"]

is_http = False

_WHAT = "DynamoDB stream record"

_CHANGES = {"INSERT": ChangeType.INSERT, "MODIFY": ChangeType.MODIFY, "REMOVE": ChangeType.REMOVE}


def matches(raw: dict[str, Any]) -> bool:
    """True for a batch of DynamoDB stream records."""
    record = first_record(raw)
    # A tumbling window's batch is ``_window``'s: its answer must carry the state.
    return (
        record is not None and record.get("eventSource") == "aws:dynamodb" and "window" not in raw
    )


def _number(value: Any) -> int | float:
    if not isinstance(value, str):
        raise MalformedEventError(f"DynamoDB number must be a string, got {value!r}")
    try:
        return int(value)
    except ValueError:
        return float(value)


def plain_value(value: Any) -> Any:
    """A DynamoDB AttributeValue (``{"N": "5"}``, ``{"M": {...}}``, ...) as a plain value.

    Raises:
        MalformedEventError: not a one-key AttributeValue of a known type.
    """
    if not isinstance(value, dict) or len(value) != 1:
        raise MalformedEventError(f"not a DynamoDB AttributeValue: {value!r}")
    ((tag, inner),) = value.items()
    if tag == "S" and isinstance(inner, str):
        return inner
    if tag == "N":
        return _number(inner)
    if tag == "M" and isinstance(inner, dict):
        return {k: plain_value(v) for k, v in inner.items()}
    if tag == "L" and isinstance(inner, list):
        return [plain_value(v) for v in inner]
    if tag == "BOOL" and isinstance(inner, bool):
        return inner
    if tag == "NULL":
        return None
    if tag == "B":
        return decode_base64(inner, "DynamoDB binary value")
    if tag == "SS" and isinstance(inner, list) and all(isinstance(s, str) for s in inner):
        return list(inner)
    if tag == "NS" and isinstance(inner, list):
        return [_number(n) for n in inner]
    if tag == "BS" and isinstance(inner, list):
        return [decode_base64(b, "DynamoDB binary value") for b in inner]
    raise MalformedEventError(f"not a DynamoDB AttributeValue: {value!r}")


def _image(dynamodb: dict[str, Any], key: str) -> dict[str, Any] | None:
    image = dynamodb.get(key)
    if image is None:
        return None
    return {name: plain_value(v) for name, v in as_object(image, _WHAT, key).items()}


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Batch:
    """The records, in order, for their tables' registrations."""

    def decode(record: Any) -> tuple[str, object]:
        event = stream_record(record, names)
        return event.source, event

    return Batch.decode(
        Trigger.STREAM, raw["Records"], decode, item_id=_sequence_number, ordered=True
    )


def to_native(result: BatchResult, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """``batchItemFailures`` by sequence number: Lambda resumes at the first one listed."""
    return batch_response(result)


def stream_record(record: Any, names: Mapping[str, str]) -> StreamRecord:
    """The ``StreamRecord`` in one DynamoDB stream record.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
    """
    try:
        record = as_object(record, _WHAT)
        dynamodb = as_object(record.get("dynamodb"), _WHAT, "dynamodb")
        event_name = text(record, "eventName", _WHAT)
        change = _CHANGES.get(event_name)
        if change is None:
            raise MalformedEventError(f"{_WHAT} has an unknown eventName {event_name!r}")
        created = dynamodb.get("ApproximateCreationDateTime")
        return StreamRecord(
            id=text(record, "eventID", _WHAT),
            change=change,
            source=logical_name(text(record, "eventSourceARN", _WHAT), names),
            keys=_image(dynamodb, "Keys") or {},
            old=_image(dynamodb, "OldImage"),
            new=_image(dynamodb, "NewImage"),
            sequence=optional_text(dynamodb, "SequenceNumber", _WHAT),
            occurred_at=None if created is None else from_epoch(created, f"{_WHAT} time"),
            raw=record,
        )
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise malformed(_WHAT, exc) from None


def _sequence_number(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])
