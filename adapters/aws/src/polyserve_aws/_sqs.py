"""SQS queues, standard and FIFO.

Recognised by ``Records[0].eventSource == "aws:sqs"``. Each record becomes a
``Message`` for the ``Trigger.QUEUE`` registration named after the queue (the last
part of ``eventSourceARN``, or its entry in ``names``). Records are handled one by one
and the failures reported as ``batchItemFailures``. A FIFO queue (ARN ending in
``.fifo``, or records with a ``MessageGroupId``) is handled in order within each
message group: a failure stops its own group, whose later records are reported
with it, and the other groups carry on. SQS orders a FIFO queue only within a
message group, so no order SQS promises is lost; with ``per_group=False`` the first
failure stops the whole batch instead, as Lambda's documentation describes it.

Message attributes: ``stringValue`` (String and Number types); a Binary attribute keeps
its base64 text, because attribute values are strings. A body marked with the
``content-transfer-encoding: base64`` attribute (``polyserve_aws.outbound`` marks bytes
SQS cannot carry as text) is decoded, and the marking attribute left out.

The producer's trace, which the record's handler continues: its ``traceparent`` (and
``tracestate``) message attribute, else the ``AWSTraceHeader`` system attribute (X-Ray).

With ``handler(app, honor_retry_delay=True)``, records that failed with
``Retry(delay=...)`` also get their visibility changed after the batch (see
``_visibility``); the response is the same either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import Batch, from_epoch_ms, malformed
from polyserve.errors import MalformedEventError
from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve.tracing import from_traceparent, from_xray
from polyserve_aws._batch import batch_response
from polyserve_aws._wire import decoded_body, first_record, logical_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.batch import BatchResult
    from polyserve.context import Context
    from polyserve.tracing import TraceContext

__all__ = ["batch_of", "is_fifo", "is_http", "matches", "message", "to_event", "to_native"]

is_http = False

_WHAT = "SQS record"


def matches(raw: dict[str, Any]) -> bool:
    """True for a batch of SQS records."""
    record = first_record(raw)
    return record is not None and record.get("eventSource") == "aws:sqs"


def is_fifo(record: dict[str, Any]) -> bool:
    """True when ``record`` comes from a FIFO queue."""
    arn = record.get("eventSourceARN")
    if isinstance(arn, str) and arn.endswith(".fifo"):
        return True
    attributes = record.get("attributes")
    return isinstance(attributes, dict) and "MessageGroupId" in attributes


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Batch:
    """The records, for their queues' registrations; in order for a FIFO queue, where
    a failure stops only its message group."""
    return batch_of(raw, names, per_group=True)


def batch_of(raw: dict[str, Any], names: Mapping[str, str], *, per_group: bool) -> Batch:
    """``to_event`` with the handler's FIFO option: with ``per_group=False`` a FIFO
    queue's failure stops the whole batch."""
    records: list[Any] = raw["Records"]

    def decode(record: Any) -> tuple[str, object]:
        event = message(record, names)
        return event.source, event

    return Batch.decode(
        Trigger.QUEUE, records, decode, item_id=_message_id, ordered=is_fifo(records[0]),
        trace_of=_producer_trace, group_of=_message_group if per_group else None,
    )  # fmt: skip


def _message_group(record: Any) -> str:
    # A record without a readable group raises: the batch then treats it as possibly
    # of any group (see polyserve.batch).
    group = record["attributes"]["MessageGroupId"]
    if group.__class__ is not str:
        raise TypeError("MessageGroupId must be a string")
    return group


def _producer_trace(record: Any) -> TraceContext | None:
    # The W3C traceparent attribute first: it is the trace the producer's code sent
    # the message in. AWSTraceHeader, else: the X-Ray trace SQS recorded the send in,
    # the only one a producer that writes no traceparent leaves.
    try:
        attributes = record.get("messageAttributes")
        if attributes:
            parent = attributes.get("traceparent")
            if parent is not None:
                state = attributes.get("tracestate")
                found = from_traceparent(
                    parent.get("stringValue"), state and state.get("stringValue")
                )
                if found is not None:
                    return found
        return from_xray(record["attributes"]["AWSTraceHeader"])
    except (KeyError, TypeError, AttributeError):
        return None


def _message_id(record: dict[str, Any]) -> str:
    return str(record["messageId"])


def to_native(result: BatchResult, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """The records to redeliver, as ``batchItemFailures``."""
    return batch_response(result)


def message(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one SQS record.

    Raises:
        MalformedEventError: a field is missing or has the wrong type (the receive
            count or sent time included): the record fails alone.
    """
    try:
        message_id = record["messageId"]
        body = record["body"]
        arn = record["eventSourceARN"]
        system = record.get("attributes") or _NO_ATTRIBUTES
        count = system.get("ApproximateReceiveCount", "1")
        attempt = int(count) if count.__class__ is str and count.isdigit() else count
        sent = system.get("SentTimestamp")
        group = system.get("MessageGroupId")
        attributes: dict[str, str] = {}
        for name, attribute in (record.get("messageAttributes") or _NO_ATTRIBUTES).items():
            value = attribute.get("stringValue")
            if value is None:
                value = attribute.get("binaryValue")
            if value.__class__ is str:
                attributes[name] = value
        data = decoded_body(body, attributes, _WHAT) if attributes else body.encode()
    except (KeyError, TypeError, AttributeError) as exc:
        raise malformed(_WHAT, exc) from None
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON
        raise MalformedEventError(f"{_WHAT} body is not valid Unicode") from None
    if message_id.__class__ is not str or arn.__class__ is not str:
        raise MalformedEventError(f"{_WHAT} messageId and eventSourceARN must be strings")
    if attempt.__class__ is not int:
        raise MalformedEventError(f"{_WHAT} ApproximateReceiveCount is not a number: {count!r}")
    if group is not None and group.__class__ is not str:
        raise MalformedEventError(f"{_WHAT} MessageGroupId must be a string")
    return Message(
        id=message_id,
        body=data,
        attributes=attributes,
        attempt=attempt,
        enqueued_at=None if sent is None else from_epoch_ms(sent, _SENT),
        source=logical_name(arn, names),
        group_key=group,
        raw=record,
    )


_NO_ATTRIBUTES: Mapping[str, Any] = {}
_SENT = f"{_WHAT} SentTimestamp"
