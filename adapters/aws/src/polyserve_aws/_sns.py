"""SNS topic subscriptions.

Recognised by ``Records[0].EventSource == "aws:sns"``. SNS invokes a function
asynchronously with one record; each record becomes a ``Message`` for the
``Trigger.TOPIC`` registration named after the topic (the last part of ``TopicArn``, or
its entry in ``names``). A failure raises, so Lambda's asynchronous retries and the
function's on-failure destination or dead-letter queue apply; nothing is swallowed.

``Message`` becomes the UTF-8 body, ``Subject`` the subject, ``Timestamp`` the
enqueue time and each message attribute its ``Value`` (Binary attributes keep their
base64 text). SNS keeps no delivery count, so ``attempt`` is 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve_aws._wire import (
    as_object,
    first_record,
    from_iso,
    logical_name,
    malformed,
    optional_text,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.app import App
    from polyserve.context import Context

__all__ = ["handle", "matches", "to_event", "to_native"]

_WHAT = "SNS record"


def matches(raw: dict[str, Any]) -> bool:
    """True for an SNS notification."""
    record = first_record(raw)
    return record is not None and record.get("EventSource") == "aws:sns"


def to_event(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one SNS record.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
    """
    try:
        sns = as_object(as_object(record, _WHAT).get("Sns"), _WHAT, "Sns")
        attributes: dict[str, str] = {}
        for name, attribute in (sns.get("MessageAttributes") or {}).items():
            value = attribute.get("Value")
            if isinstance(value, str):
                attributes[name] = value
        timestamp = sns.get("Timestamp")
        return Message(
            id=text(sns, "MessageId", _WHAT),
            body=text(sns, "Message", _WHAT).encode(),
            attributes=attributes,
            enqueued_at=None if timestamp is None else from_iso(timestamp, f"{_WHAT} Timestamp"),
            source=logical_name(text(sns, "TopicArn", _WHAT), names),
            subject=optional_text(sns, "Subject", _WHAT),
            raw=record,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise malformed(_WHAT, exc) from None


def to_native(result: object) -> None:
    """SNS ignores what a function returns: the invocation returns ``null``."""
    return None


def handle(app: App, raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Any:
    """Handle each notification; the first failure raises."""
    result = None
    for record in raw["Records"]:
        message = to_event(record, names)
        result = app.handle_event(Trigger.TOPIC, message.source, message, context)
    return to_native(result)
