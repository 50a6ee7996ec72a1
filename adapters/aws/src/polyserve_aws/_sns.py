"""SNS topic subscriptions.

Recognised by ``Records[0].EventSource == "aws:sns"``. SNS invokes a function
asynchronously with one record; each record becomes a ``Message`` for the
``Trigger.TOPIC`` registration named after the topic (the last part of ``TopicArn``, or
its entry in ``names``). A failure raises, so Lambda's asynchronous retries and the
function's on-failure destination or dead-letter queue apply; nothing is swallowed.
SNS sends one record per invocation; should an event carry several, they are
handled in order and the first failure raises.

``Message`` becomes the UTF-8 body (base64-decoded when the
``content-transfer-encoding: base64`` attribute marks it, as for SQS), ``Subject`` the
subject, ``Timestamp`` the enqueue time and each message attribute its ``Value`` (Binary
attributes keep their base64 text). SNS keeps no delivery count, so ``attempt`` is 1.
The handler continues the trace of the ``traceparent`` attribute, else the invocation's
X-Ray trace (which SNS propagates from the publisher when tracing is active).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import (
    Batch,
    Event,
    as_object,
    from_rfc3339,
    optional_text,
    text,
    translating,
)
from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve.tracing import from_traceparent
from polyserve_aws._batch import one_or_ordered, raise_first_failure
from polyserve_aws._wire import decoded_body, first_record, logical_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve.tracing import TraceContext

__all__ = ["is_http", "matches", "message", "producer_trace", "to_event", "to_native"]

is_http = False

_WHAT = "SNS record"


def matches(raw: dict[str, Any]) -> bool:
    """True for an SNS notification."""
    record = first_record(raw)
    return record is not None and record.get("EventSource") == "aws:sns"


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Event | Batch:
    """The notification, for the topic's registration.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
    """

    def decode(record: Any) -> tuple[str, object]:
        event = message(record, names)
        return event.source, event

    return one_or_ordered(Trigger.TOPIC, raw["Records"], decode, _message_id, producer_trace)


def producer_trace(record: Any) -> TraceContext | None:
    """The trace of a record's ``traceparent`` (and ``tracestate``) attribute, or ``None``."""
    try:
        attributes = record["Sns"]["MessageAttributes"]
        state = attributes.get("tracestate")
        return from_traceparent(attributes["traceparent"]["Value"], state and state.get("Value"))
    except (KeyError, TypeError, AttributeError):
        return None


def _message_id(record: dict[str, Any]) -> str:
    return str(record["Sns"]["MessageId"])


def message(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one SNS record.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
    """
    with translating(_WHAT):
        sns = as_object(as_object(record, _WHAT).get("Sns"), _WHAT, "Sns")
        attributes: dict[str, str] = {}
        for name, attribute in (sns.get("MessageAttributes") or {}).items():
            value = attribute.get("Value")
            if isinstance(value, str):
                attributes[name] = value
        timestamp = sns.get("Timestamp")
        body = text(sns, "Message", _WHAT)
        return Message(
            id=text(sns, "MessageId", _WHAT),
            body=decoded_body(body, attributes, _WHAT) if attributes else body.encode(),
            attributes=attributes,
            enqueued_at=None
            if timestamp is None
            else from_rfc3339(timestamp, f"{_WHAT} Timestamp"),
            source=logical_name(text(sns, "TopicArn", _WHAT), names),
            subject=optional_text(sns, "Subject", _WHAT),
            raw=record,
        )


def to_native(result: object, raw: dict[str, Any], context: Context) -> None:
    """SNS ignores what a function returns: the invocation returns ``null``.

    Raises:
        Exception: the first failure of a several-record event, so Lambda retries.
    """
    raise_first_failure(result)
