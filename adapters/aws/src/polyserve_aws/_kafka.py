"""Kafka: Amazon MSK and self-managed Apache Kafka event sources.

Recognised by ``eventSource`` ``"aws:kafka"`` (MSK) or ``"aws:SelfManagedKafka"`` and
a ``records`` object (one list per topic partition). Each record becomes a
``Message`` for the ``Trigger.STREAM`` registration named after its topic (or the
topic's entry in ``names``):

* ``body``: ``value``, base64-decoded; ``group_key``: ``key`` decoded as UTF-8 (its
  base64 text when it is not UTF-8; ``None`` for a record without a key);
* ``attributes``: the headers, each value decoded as UTF-8 (a repeated name keeps
  its last value);
* ``id``: ``topic-partition@offset``, the record's position; ``enqueued_at``:
  ``timestamp`` (milliseconds); ``attempt`` 1, since Kafka keeps no delivery count.

A record without a value (a tombstone), with a header that is not UTF-8 or with a
malformed field fails alone, as a handler failure would.

The Kafka event source mappings take no partial batch response, so records are
handled in order and the first failure stops the batch (set-aside records count as
handled). The function then raises that failure, and Lambda retries the whole batch
from its first record: records before the failure run again, so handlers should be
idempotent.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from polyserve.adapter import Batch, from_epoch_ms, malformed
from polyserve.errors import MalformedEventError
from polyserve.events import Message
from polyserve.routing import Trigger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.batch import BatchResult
    from polyserve.context import Context

__all__ = ["is_http", "matches", "message", "to_event", "to_native"]

is_http = False

_WHAT = "Kafka record"
_SOURCES = frozenset(("aws:kafka", "aws:SelfManagedKafka"))


def matches(raw: dict[str, Any]) -> bool:
    """True for a batch of MSK or self-managed Kafka records."""
    source = raw.get("eventSource")
    return isinstance(source, str) and source in _SOURCES and isinstance(raw.get("records"), dict)


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Batch:
    """Every partition's records, partition by partition, in order."""
    records: list[Any] = []
    for partition in raw["records"].values():
        records.extend(partition if isinstance(partition, list) else [partition])

    def decode(record: Any) -> tuple[str, object]:
        event = message(record, names)
        return event.source, event

    return Batch.decode(Trigger.STREAM, records, decode, item_id=_position, ordered=True)


def to_native(result: BatchResult, raw: dict[str, Any], context: Context) -> None:
    """``None`` when every record was handled; else the first failure, raised."""
    if result.failed:
        first = result.failed[0]
        raise first.error if first.error is not None else RuntimeError(first.reason)


def _position(record: Any) -> str:
    return f"{record['topic']}-{record['partition']}@{record['offset']}"


def _bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEventError(
            f"{_WHAT} {field} must be base64 text, got {type(value).__name__}"
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEventError(f"{_WHAT} {field} is not valid base64") from None


def _headers(headers: Any) -> dict[str, str]:
    decoded: dict[str, str] = {}
    for header in headers or ():
        for name, value in header.items():
            if not isinstance(name, str) or not isinstance(value, list):
                raise MalformedEventError(f"{_WHAT} headers must map names to byte lists")
            try:
                decoded[name] = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedEventError(f"{_WHAT} header {name!r} is not UTF-8") from None
    return decoded


def message(record: Any, names: Mapping[str, str]) -> Message:
    """The ``Message`` in one Kafka record.

    Raises:
        MalformedEventError: no value, a header that is not UTF-8, or a field missing
            or of the wrong type: the record fails alone.
    """
    try:
        topic = record["topic"]
        ident = _position(record)
        raw_key = record.get("key")
        value = record.get("value")
        timestamp = record.get("timestamp")
        attributes = _headers(record.get("headers"))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise malformed(_WHAT, exc) from None
    if not isinstance(topic, str):
        raise MalformedEventError(f"{_WHAT} topic must be a string")
    if value is None:
        raise MalformedEventError(f"{_WHAT} {ident} has no value")
    key: str | None = None
    if raw_key is not None:
        try:
            key = _bytes(raw_key, "key").decode("utf-8")
        except UnicodeDecodeError:
            key = raw_key
    return Message(
        id=ident,
        body=_bytes(value, "value"),
        attributes=attributes,
        enqueued_at=None if timestamp is None else from_epoch_ms(timestamp, f"{_WHAT} timestamp"),
        source=names.get(topic, topic),
        group_key=key,
        raw=record,
    )
