"""Kafka records delivered as CloudEvents (a Kafka source feeding the function) -> ``Message``.

The Kafka source Eventarc and Cloud Run use for Kafka topics is Knative's
``KafkaSource``: it reads each partition in order and delivers one record per
CloudEvent, waiting for a success before the next record of that partition. Its
events look like this:

=====================  ===================================================
attribute              value
=====================  ===================================================
``type``               ``dev.knative.kafka.event``
``source``             ``/apis/v1/namespaces/NS/kafkasources/NAME#TOPIC``
``id``                 ``partition:P/offset:O``
``subject``            ``partition:P#O``
``time``               the record's timestamp
``key``                the record key, when it has one
``kafkaheader<name>``  each record header (the name lower-cased, reduced to
                       letters and digits)
data                   the record value, as sent
=====================  ===================================================

Each becomes a ``Message`` for the ``@app.queue`` registration of the topic (the
``names`` mapping applied to the full source or the topic, else the topic):

- ``body``: the value's bytes (a JSON value the SDK decoded is encoded again);
  a tombstone (no value) is an empty body, so a compacted topic's deletes reach
  the handler rather than blocking their partition;
- ``attributes``: the headers, by the names the source gives them;
- ``group_key``: the key (``None`` for a record without one);
- ``id``: ``TOPIC/partition:P/offset:O``, unique per record;
- ``subject``: the position ``partition:P#O``; ``enqueued_at``: the timestamp.

A record that cannot be read (a header that is not text, a source without a
topic) fails as ``MalformedEventError``, that record only: the next one is a new
invocation.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from polyserve.adapter import Event, from_rfc3339
from polyserve.errors import MalformedEventError
from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve_gcp._names import logical

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve_gcp.types import CloudEventLike

__all__ = [
    "EVENT_TYPE",
    "is_http",
    "matches",
    "to_event",
]

EVENT_TYPE = "dev.knative.kafka.event"
_HEADER_PREFIX = "kafkaheader"


is_http = False


def matches(event: CloudEventLike) -> bool:
    """Whether ``event`` is a Kafka record from a Kafka source."""
    return event.get_attributes().get("type") == EVENT_TYPE


def to_event(event: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
    """The ``Message`` of one Kafka record.

    Raises:
        MalformedEventError: a source without a topic, or a header that is not text.
    """
    attrs = event.get_attributes()
    source = str(attrs.get("source") or "")
    _, sep, topic = source.rpartition("#")
    if not sep or not topic:
        raise MalformedEventError(f"a Kafka event's source names no topic: {source!r}")
    name = logical(names, source, topic)
    position = str(attrs.get("subject") or "")
    key = attrs.get("key", attrs.get("partitionkey"))
    when = attrs.get("time")
    message = Message(
        id=f"{topic}/{attrs.get('id') or position}",
        body=_value(event.get_data()),
        attributes=_headers(attrs),
        enqueued_at=_time(when),
        source=name,
        group_key=None if key is None else _text(key, "key"),
        subject=position or None,
        raw=event,
    )
    return Event(Trigger.QUEUE, name, message)


def _value(data: Any) -> bytes:
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    # A JSON value the SDK decoded from a structured or JSON-typed event.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _headers(attrs: Any) -> dict[str, str]:
    return {
        name.removeprefix(_HEADER_PREFIX): _text(value, f"header {name!r}")
        for name, value in attrs.items()
        if isinstance(name, str) and name.startswith(_HEADER_PREFIX) and name != _HEADER_PREFIX
    }


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEventError(f"the Kafka record's {what} is not UTF-8 text") from None
    if isinstance(value, (int, bool)):
        return str(value)
    raise MalformedEventError(f"the Kafka record's {what} is not text")


def _time(when: object) -> dt.datetime | None:
    if isinstance(when, dt.datetime):
        return when
    return from_rfc3339(when, "Kafka record time") if when else None


def to_native(outcome: object, raw: CloudEventLike, context: Context) -> None:
    """Nothing: functions-framework answers 200 once the function returns."""
    return None
