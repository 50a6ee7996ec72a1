"""SQS queues, standard and FIFO.

Recognised by ``Records[0].eventSource == "aws:sqs"``. Each record becomes a
``Message`` for the ``Trigger.QUEUE`` registration named after the queue (the last
part of ``eventSourceARN``, or its entry in ``names``). Records are handled one by one
and the failures reported as ``batchItemFailures``. A FIFO queue (ARN ending in
``.fifo``, or records with a ``MessageGroupId``) is handled in order: the first failure
stops the batch and it and every later record are reported.

Message attributes: ``stringValue`` (String and Number types); a Binary attribute keeps
its base64 text, because attribute values are strings.

With ``handler(app, honor_retry_delay=True)``, records that failed with
``Retry(delay=...)`` also get their visibility changed after the batch (see
``_visibility``); the response is the same either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve_aws._batch import batch_response, handle_records
from polyserve_aws._wire import (
    as_object,
    first_record,
    from_epoch_ms,
    logical_name,
    malformed,
    optional_text,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve_aws._visibility import RetryDelays

__all__ = ["handle", "is_fifo", "matches", "to_event", "to_native"]

_WHAT = "SQS record"
_SENT = f"{_WHAT} SentTimestamp"

to_native = batch_response


def matches(raw: dict[str, Any]) -> bool:
    """True for a batch of SQS records."""
    record = first_record(raw)
    return record is not None and record.get("eventSource") == "aws:sqs"


def is_fifo(record: dict[str, Any]) -> bool:
    """True when ``record`` comes from a FIFO queue."""
    arn = record.get("eventSourceARN")
    attributes = record.get("attributes")
    return (isinstance(arn, str) and arn.endswith(".fifo")) or (
        isinstance(attributes, dict) and "MessageGroupId" in attributes
    )


def to_event(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one SQS record.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
    """
    try:
        if record.__class__ is dict:
            message_id = record.get("messageId")
            body = record.get("body")
            arn = record.get("eventSourceARN")
            attributes = record.get("attributes") or {}
            # One check for the well-formed record; the detailed checks below only run
            # to say what is wrong with a malformed one.
            if (
                message_id.__class__ is str
                and body.__class__ is str
                and arn.__class__ is str
                and attributes.__class__ is dict
            ):
                return _message(record, message_id, body, arn, attributes, names)
        record = as_object(record, _WHAT)
        return _message(
            record,
            text(record, "messageId", _WHAT),
            text(record, "body", _WHAT),
            text(record, "eventSourceARN", _WHAT),
            as_object(record.get("attributes") or {}, _WHAT, "attributes"),
            names,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise malformed(_WHAT, exc) from None


def _message(
    record: dict[str, Any],
    message_id: str,
    body: str,
    arn: str,
    attributes: dict[str, Any],
    names: Mapping[str, str],
) -> Message:
    message_attributes: dict[str, str] = {}
    raw_attributes = record.get("messageAttributes")
    if raw_attributes:
        for name, attribute in raw_attributes.items():
            value = attribute.get("stringValue")
            if value is None:
                value = attribute.get("binaryValue")
            if isinstance(value, str):
                message_attributes[name] = value
    sent = attributes.get("SentTimestamp")
    group = attributes.get("MessageGroupId")
    if group is not None and group.__class__ is not str:
        group = optional_text(attributes, "MessageGroupId", _WHAT)
    return Message(
        message_id,
        body.encode(),
        message_attributes,
        int(attributes.get("ApproximateReceiveCount", 1)),
        None if sent is None else from_epoch_ms(sent, _SENT),
        logical_name(arn, names),
        group,
        None,
        record,
    )


def _message_id(record: dict[str, Any]) -> str:
    return str(record["messageId"])


def handle(
    app: App,
    raw: dict[str, Any],
    context: Context,
    names: Mapping[str, str],
    *,
    retry_delays: RetryDelays | None = None,
) -> Any:
    """Handle every message; return the ones to redeliver as ``batchItemFailures``.

    With ``retry_delays``, the records that failed with ``Retry(delay=...)`` then get
    that visibility timeout; nothing that happens there changes the response.
    """
    records: list[Any] = raw["Records"]
    result = handle_records(
        app, Trigger.QUEUE, records, context,
        to_event=to_event, names=names, item_id=_message_id, ordered=is_fifo(records[0]),
    )  # fmt: skip
    response = to_native(result)
    if retry_delays is not None:
        retry_delays.apply(records, result.failed, context)
    return response
