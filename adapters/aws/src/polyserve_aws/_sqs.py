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

from dataclasses import fields
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from polyserve.events import Message, parse_json
from polyserve.routing import Trigger
from polyserve_aws._batch import batch_response
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
    import datetime as dt
    from collections.abc import Callable, Mapping

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve_aws._visibility import RetryDelays

__all__ = ["SqsMessage", "handle", "is_fifo", "matches", "to_event", "to_native"]

_WHAT = "SQS record"
_SENT = f"{_WHAT} SentTimestamp"
_BODY = "message body"

to_native = batch_response
# The id a record is reported by (a record without one is reported by its position).
_message_id = itemgetter("messageId")


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


class SqsMessage(Message):
    """A ``Message`` whose fields are read from its SQS record as they are asked for.

    One is built for every record of a batch with two slot stores (``source`` and
    ``raw``); a handler pays only for the fields it reads, so the receive count,
    the sent time and the message attributes are parsed only if it reads them.
    A field that turns out malformed raises ``MalformedEventError`` when read, and
    the record fails. It equals a ``Message`` with the same fields, and
    ``dataclasses.replace`` or a copy gives a plain ``Message``.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Message:  # type: ignore[misc]
        # Only reached by construction from fields (dataclasses.replace, copies): those
        # make an ordinary Message, since there is no record to read from.
        return Message(*args, **kwargs)

    def __reduce__(self) -> tuple[type[Message], tuple[Any, ...]]:
        return Message, tuple(getattr(self, f) for f in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _COMPARED)

    __hash__ = Message.__hash__

    @property
    def id(self) -> str:
        return _text(self.raw, "messageId")

    @property
    def body(self) -> bytes:
        return _text(self.raw, "body").encode()

    @property
    def text(self) -> str:
        return _text(self.raw, "body")

    def json(self) -> Any:
        # Parsed straight from the record's text: no round trip through bytes.
        body = self.raw.get("body")
        return parse_json(body if body.__class__ is str else _text(self.raw, "body"), _BODY)

    @property
    def attributes(self) -> Mapping[str, str]:
        out: dict[str, str] = {}
        try:
            raw_attributes = self.raw.get("messageAttributes")
            if raw_attributes:
                for name, attribute in raw_attributes.items():
                    value = attribute.get("stringValue")
                    if value is None:
                        value = attribute.get("binaryValue")
                    if isinstance(value, str):
                        out[name] = value
        except (TypeError, AttributeError) as exc:
            raise malformed(_WHAT, exc) from None
        return out

    @property
    def attempt(self) -> int:
        try:
            return int(self._system_attributes().get("ApproximateReceiveCount", 1))
        except (TypeError, ValueError) as exc:
            raise malformed(_WHAT, exc) from None

    @property
    def enqueued_at(self) -> dt.datetime | None:
        sent = self._system_attributes().get("SentTimestamp")
        return None if sent is None else from_epoch_ms(sent, _SENT)

    @property
    def group_key(self) -> str | None:
        return optional_text(self._system_attributes(), "MessageGroupId", _WHAT)

    @property
    def subject(self) -> str | None:
        return None

    def _system_attributes(self) -> dict[str, Any]:
        return as_object(self.raw.get("attributes") or {}, _WHAT, "attributes")


_FIELDS = tuple(f.name for f in fields(Message))
_COMPARED = tuple(f.name for f in fields(Message) if f.compare)
_new = object.__new__
# The slots' own descriptors: they store past the frozen __setattr__, as the
# dataclass's generated __init__ does.
_set_source = Message.__dict__["source"].__set__
_set_raw = Message.__dict__["raw"].__set__


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value.__class__ is not str:
        return text(record, key, _WHAT)  # raises, saying what is wrong
    return value


def _decoder(names: Mapping[str, str]) -> Callable[[Any], tuple[str, Message]]:
    # Decodes the records of one batch; they come from one queue, so its logical
    # name is worked out once.
    logical: dict[str, str] = {}

    def decode(record: Any) -> tuple[str, Message]:
        if record.__class__ is not dict:
            as_object(record, _WHAT)  # raises
        arn = record.get("eventSourceARN")
        if arn.__class__ is not str:
            text(record, "eventSourceARN", _WHAT)  # raises, saying what is wrong
        # The other fields are checked as they are read: a record whose body is
        # missing fails when its handler asks for the body.
        name = logical.get(arn)
        if name is None:
            name = logical[arn] = logical_name(arn, names)
        message = _new(SqsMessage)
        _set_source(message, name)
        _set_raw(message, record)
        return name, message

    return decode


def to_event(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one SQS record, every field checked.

    Raises:
        MalformedEventError: a field is missing or has the wrong type.
    """
    _, message = _decoder(names)(record)
    for name in _FIELDS:
        getattr(message, name)  # reading a field checks it
    return message


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
    result = app.handle_batch(
        Trigger.QUEUE, records, context, decode=_decoder(names), item_id=_message_id,
        ordered=is_fifo(records[0]),
    )  # fmt: skip
    response = to_native(result)
    if retry_delays is not None:
        retry_delays.apply(records, result.failed, context)
    return response
