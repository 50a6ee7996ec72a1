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
    from collections.abc import Mapping

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
    if arn.__class__ is str and arn.endswith(".fifo"):
        return True
    attributes = record.get("attributes")
    return attributes.__class__ is dict and "MessageGroupId" in attributes


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
# Message's slots on a class that is not frozen: a message is filled in as one of
# these and then made an SqsMessage, which has the same layout (as
# polyserve.events.maker does for every field).
_Unfrozen = type("_UnfrozenSqsMessage", (), {"__slots__": Message.__slots__})


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value.__class__ is not str:
        return text(record, key, _WHAT)  # raises, saying what is wrong
    return value


class _QueueNames:
    """Queue ARN -> logical name for one handler's ``names``, each worked out once."""

    __slots__ = ("_known", "_names")

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = names
        self._known: dict[str, str] = {}

    def __call__(self, arn: str) -> str:
        name = self._known.get(arn)
        if name is None:
            if len(self._known) >= 256:  # a function reads from a few queues at most
                self._known.clear()
            name = self._known[arn] = logical_name(arn, self._names)
        return name


def _queue_names(names: Mapping[str, str]) -> _QueueNames:
    # The handler passes the same ``names`` mapping every time: one cache per mapping.
    kept = _kept.get(id(names))
    if kept is None or kept._names is not names:
        if len(_kept) >= 64:  # one per handler in a process: a bound, not a limit
            _kept.clear()
        kept = _kept[id(names)] = _QueueNames(names)
    return kept


_kept: dict[int, _QueueNames] = {}


def _decode_all(
    records: list[Any], names: Mapping[str, str]
) -> list[tuple[str, Message] | BaseException]:
    """Every record as ``(logical name, message)``, or the error that keeps it from being one.

    Only the queue is needed now; the other fields are checked as they are read, so a
    record whose body is missing fails when its handler asks for the body. The
    records of a batch come from one queue, so its name is looked up once and then
    only compared.
    """
    queue_name = _queue_names(names)
    out: list[tuple[str, Message] | BaseException] = []
    append = out.append
    queue_arn: object = None
    queue = ""
    for record in records:
        arn = record.get("eventSourceARN") if record.__class__ is dict else None
        if arn.__class__ is not str:
            try:
                text(as_object(record, _WHAT), "eventSourceARN", _WHAT)  # raises, saying why
            except Exception as exc:
                append(exc)
            continue
        if arn != queue_arn:
            queue_arn, queue = arn, queue_name(arn)
        message: Any = _new(_Unfrozen)
        message.source = queue
        message.raw = record
        message.__class__ = SqsMessage
        append((queue, message))
    return out


def to_event(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one SQS record, every field checked.

    Raises:
        MalformedEventError: a field is missing or has the wrong type.
    """
    decoded = _decode_all([record], names)[0]
    if isinstance(decoded, BaseException):
        raise decoded
    _, message = decoded
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
        Trigger.QUEUE, records, context, decoded=_decode_all(records, names),
        item_id=_message_id, ordered=is_fifo(records[0]),
    )  # fmt: skip
    response = to_native(result)
    if retry_delays is not None:
        retry_delays.apply(records, result.failed, context)
    return response
