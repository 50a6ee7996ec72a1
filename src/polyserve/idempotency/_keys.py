"""What identifies a delivery, and what its payload is, for each kind of event.

Default keys::

    Message        id
    CloudEvent     source + id
    StorageEvent   bucket + key + (version or etag, else the event id) + action
    ScheduleEvent  name + scheduled_at (else the event id)
    StreamRecord   source + sequence (else the record id)
    HttpRequest    hash of method + path + body (when no Idempotency-Key header is sent)
    arguments      hash of the function's arguments (plain functions)

Several parts are joined as a compact JSON array, so no two different tuples give the
same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from polyserve.errors import MalformedEventError
from polyserve.events import (
    CloudEvent,
    HttpRequest,
    Message,
    ScheduleEvent,
    StorageEvent,
    StreamRecord,
)
from polyserve.idempotency._serialize import canonical

__all__ = [
    "EVENT_TYPES",
    "event_key",
    "key_text",
    "payload_bytes",
    "payload_value",
    "request_digest",
    "resolve_path",
]

EVENT_TYPES: tuple[type, ...] = (Message, CloudEvent, StorageEvent, ScheduleEvent, StreamRecord)


def event_key(event: object) -> str | None:
    """The default key of a non-HTTP event, or ``None`` if it carries no identity."""
    if isinstance(event, Message):
        return event.id or None
    if isinstance(event, CloudEvent):
        return _join(event.source, event.id) if event.id else None
    if isinstance(event, StorageEvent):
        revision = event.version or event.etag
        if revision:
            return _join(event.bucket, event.key, revision, event.action.value)
        # Without a revision, two uploads of one object name would share a key and the
        # second would be skipped; the delivery's own id keeps them apart.
        return _join(event.bucket, event.key, event.id, event.action.value) if event.id else None
    if isinstance(event, ScheduleEvent):
        if event.scheduled_at is not None:
            return _join(event.name, event.scheduled_at.isoformat())
        return _join(event.name, event.id) if event.id else None
    if isinstance(event, StreamRecord):
        position = event.sequence or event.id
        return _join(event.source, position) if position else None
    return None


def request_digest(request: HttpRequest) -> str:
    """A hash of what a request asks for: method, path and body.

    The method is a token (no spaces) and the path is length-prefixed, so no two
    requests share an encoding.
    """
    path = request.path.encode()
    head = b"%s %d:%s\n" % (request.method.upper().encode(), len(path), path)
    return hashlib.sha256(head + request.body).hexdigest()


def payload_bytes(event: object) -> bytes:
    """The bytes an event's payload fingerprint is computed from.

    Raises:
        MalformedEventError: the payload has no JSON form, or is nested too deeply to
            encode, so that the delivery fails with a typed error.
    """
    if isinstance(event, Message):
        return event.body
    if isinstance(event, CloudEvent) and isinstance(event.data, (bytes, bytearray)):
        return bytes(event.data)
    try:
        return canonical(payload_value(event))
    except TypeError as exc:
        raise MalformedEventError(f"the event payload cannot be fingerprinted: {exc}") from None


def payload_value(subject: object) -> Any:
    """The JSON payload a dotted path reads: a body, CloudEvent data, a schedule payload,
    a stream image, a storage event's fields, or (for plain functions) the arguments.

    Raises:
        MalformedEventError: the body is not JSON.
    """
    if isinstance(subject, (HttpRequest, Message)):
        return subject.json()
    if isinstance(subject, CloudEvent):
        return subject.json()
    if isinstance(subject, ScheduleEvent):
        return subject.payload
    if isinstance(subject, StreamRecord):
        return subject.new if subject.new is not None else subject.old
    if isinstance(subject, StorageEvent):
        return {
            "bucket": subject.bucket,
            "key": subject.key,
            "version": subject.version,
            "etag": subject.etag,
            "size": subject.size,
            "action": subject.action.value,
        }
    try:
        return json.loads(canonical(subject))
    except RecursionError:  # canonical wrote it, so only its depth can fail here
        raise TypeError("the value is nested too deeply to decode") from None


def resolve_path(subject: object, path: str) -> Any:
    """The value at dotted ``path`` (``"order.id"``, ``"items.0.sku"``) in the payload,
    or ``None`` when any step is missing or the payload is not JSON."""
    try:
        value = payload_value(subject)
    except (MalformedEventError, TypeError):
        return None
    for step in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, list) and step.lstrip("-").isdigit():
            index = int(step)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def key_text(value: Any) -> str | None:
    """A key taken from a payload or returned by a key function, as text (``None``: missing)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return canonical(value).decode()


def _join(*parts: str) -> str:
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
