"""Kafka trigger: ``azure.functions.KafkaEvent`` (one, or a batch) -> ``Message`` each.

The Kafka extension delivers a record's value as the body (``dataType="binary"``, so
values that are not text arrive intact), and its key, topic, partition, offset,
timestamp and headers as trigger metadata, which the worker puts on each event (a
batch's metadata holds them by position).

A record becomes a ``Message`` whose ``id`` is ``<topic>-<partition>@<offset>`` (its
position, unique in the cluster), ``body`` the value, ``group_key`` the key (``None``
for a record without one), ``attributes`` the headers (values decoded as UTF-8; a
repeated header keeps its last value), ``enqueued_at`` the timestamp and ``source``
the topic's logical name. A record whose value is null, or whose headers are not
UTF-8, fails alone: its batch carries on (see ``polyserve.batch``).

A ``traceparent`` header (W3C), or the ``Diagnostic-Id`` header Azure SDKs write, is
the record's producer trace.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from polyserve.adapter import translating
from polyserve.errors import MalformedEventError
from polyserve.events import Message
from polyserve_azure import _wire
from polyserve_azure._tracing import properties_trace

if TYPE_CHECKING:
    from polyserve.tracing import TraceContext
    from polyserve_azure._types import NativeKafkaEvent

__all__ = ["failure_id", "headers", "item_id", "matches", "read", "records", "trace_of"]


def matches(raw: object) -> bool:
    """True for a batch (a list) of records, or one object shaped like ``KafkaEvent``."""
    return isinstance(raw, list) or (hasattr(raw, "get_body") and hasattr(raw, "offset"))


def records(raw: object) -> list[Any]:
    """The records of an invocation: the batch, or the one record as a batch of one."""
    return raw if isinstance(raw, list) else [raw]


def read(event: NativeKafkaEvent, index: int, *, source: str, attempt: int = 1) -> Message:
    """Record ``index`` of an invocation, from the topic whose logical name is ``source``.

    Kafka counts no deliveries: ``attempt`` is the run of the function's retry policy.

    Raises:
        MalformedEventError: the value is null, the topic, partition or offset is
            missing, the timestamp is not a date-time, or a header is not base64 of UTF-8.
    """
    with translating("Kafka record"):
        value = event.get_body()
        if value is None:
            raise MalformedEventError("Kafka record has a null value")
        return Message(
            id=item_id(event, index),
            body=_wire.body(value, "Kafka record value"),
            attributes=headers(_field(event, "headers", "Headers", index)),
            attempt=attempt,
            enqueued_at=_wire.utc(
                _field(event, "timestamp", "Timestamp", index), "Kafka record timestamp"
            ),
            source=source,
            group_key=_key(_field(event, "key", "Key", index)),
            raw=event,
        )


def item_id(event: NativeKafkaEvent, index: int) -> str:
    """``<topic>-<partition>@<offset>``, the record's position; ``#<index>`` without one.

    Raises:
        MalformedEventError: the topic, partition or offset is missing or mistyped.
    """
    topic = _field(event, "topic", "Topic", index)
    partition = _field(event, "partition", "Partition", index)
    offset = _field(event, "offset", "Offset", index)
    if not isinstance(topic, str) or not topic:
        raise MalformedEventError("Kafka record has no topic")
    for name, value in (("partition", partition), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MalformedEventError(f"Kafka record has no integer {name}")
    return f"{topic}-{partition}@{offset}"


def failure_id(event: NativeKafkaEvent, index: int) -> str:
    """The id a batch failure reports: the position, or ``#<index>`` if it cannot be read."""
    try:
        return item_id(event, index)
    except (AttributeError, MalformedEventError):
        return f"#{index}"


def headers(value: object) -> dict[str, str]:
    """Kafka headers (``[{"Key": name, "Value": base64}]``, or that list as JSON) as strings.

    Raises:
        MalformedEventError: the headers are not such a list, or a value is not base64
            of UTF-8 text.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            raise MalformedEventError("Kafka record headers are not JSON") from None
    if not isinstance(value, list):
        raise MalformedEventError("Kafka record headers must be a list")
    out: dict[str, str] = {}
    for header in value:
        if not isinstance(header, Mapping) or not isinstance(header.get("Key"), str):
            raise MalformedEventError("Kafka record header must be {Key, Value}")
        name, data = header["Key"], header.get("Value")
        if data is None:
            out[name] = ""
            continue
        if not isinstance(data, str):
            raise MalformedEventError(f"Kafka record header {name!r} is not base64 text")
        try:
            out[name] = base64.b64decode(data, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise MalformedEventError(
                f"Kafka record header {name!r} is not base64 of UTF-8 text"
            ) from None
    return out


def trace_of(event: NativeKafkaEvent, index: int) -> TraceContext | None:
    """The producer's trace in the record's ``traceparent`` / ``Diagnostic-Id`` header."""
    try:
        return properties_trace(headers(_field(event, "headers", "Headers", index)))
    except (AttributeError, MalformedEventError):
        return None


def _key(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            raise MalformedEventError("Kafka record key is not UTF-8 text") from None
    if not isinstance(value, str):
        raise MalformedEventError(f"Kafka record key must be text, got {type(value).__name__}")
    return value


def _field(event: NativeKafkaEvent, attribute: str, metadata_name: str, index: int) -> Any:
    # The worker sets the fields of each event it builds; an event built without
    # them (a batch the worker decoded before it read per-record metadata) still has
    # the trigger metadata, where a batch keeps each field by position ("KeyArray").
    value = getattr(event, attribute, None)
    if value is not None:
        return value
    metadata = getattr(event, "metadata", None)
    if not isinstance(metadata, Mapping):
        return None
    many = metadata.get(metadata_name + "Array")
    if isinstance(many, str):
        try:
            many = json.loads(many)
        except ValueError:
            return None
    if isinstance(many, list):
        return many[index] if index < len(many) else None
    return metadata.get(metadata_name)
