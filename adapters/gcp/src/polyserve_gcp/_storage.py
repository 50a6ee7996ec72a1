"""Cloud Storage object events, as CloudEvents or background events.

Both carry the object's metadata (``bucket``, ``name``, ``size`` as a string,
``etag``, ``generation``, ``contentType``, ``timeCreated``, ``updated``). The
handler is the storage registration named after the bucket's logical name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import Event, from_rfc3339, json_object, optional_text
from polyserve.errors import MalformedEventError
from polyserve.events import StorageAction, StorageEvent
from polyserve.routing import Trigger
from polyserve_gcp._names import logical

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve_gcp.types import CloudEventLike

__all__ = [
    "ACTIONS",
    "LEGACY_ACTIONS",
    "OBJECT_CHANGE",
    "is_http",
    "matches",
    "read_object",
    "to_event",
    "to_native",
]

ACTIONS = {
    "google.cloud.storage.object.v1.finalized": StorageAction.CREATED,
    "google.cloud.storage.object.v1.deleted": StorageAction.DELETED,
    "google.cloud.storage.object.v1.metadataUpdated": StorageAction.METADATA_UPDATED,
    "google.cloud.storage.object.v1.archived": StorageAction.ARCHIVED,
}
LEGACY_ACTIONS = {
    "google.storage.object.finalize": StorageAction.CREATED,
    "google.storage.object.delete": StorageAction.DELETED,
    "google.storage.object.metadataUpdate": StorageAction.METADATA_UPDATED,
    "google.storage.object.archive": StorageAction.ARCHIVED,
}
# The oldest background type: one event for every change, told apart by resourceState.
OBJECT_CHANGE = "providers/cloud.storage/eventTypes/object.change"

_SOURCE_PREFIX = "//storage.googleapis.com/projects/_/buckets/"


is_http = False


def matches(event: CloudEventLike) -> bool:
    """Whether ``event`` is one of the four Cloud Storage object CloudEvents."""
    return event.get_attributes().get("type") in ACTIONS


def to_event(event: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
    """The ``StorageEvent`` of a Cloud Storage CloudEvent.

    The bucket comes from ``data.bucket``, else from ``source``
    (``//storage.googleapis.com/projects/_/buckets/B``); the key from
    ``data.name``, else from ``subject`` (``objects/KEY``).
    """
    attrs = event.get_attributes()
    source = attrs.get("source")
    bucket = None
    if isinstance(source, str) and source.startswith(_SOURCE_PREFIX):
        bucket = source.removeprefix(_SOURCE_PREFIX)
    subject = attrs.get("subject")
    key = None
    if isinstance(subject, str) and subject.startswith("objects/"):
        key = subject.removeprefix("objects/")
    return read_object(
        json_object(event.get_data(), "Cloud Storage CloudEvent data"),
        ACTIONS[attrs["type"]],
        names,
        bucket=bucket,
        key=key,
        event_id=str(attrs.get("id") or ""),
        time=attrs.get("time"),
        raw=event,
    )


def read_object(
    data: dict[str, Any],
    action: StorageAction,
    names: Mapping[str, str],
    *,
    bucket: str | None,
    key: str | None,
    event_id: str,
    time: Any,
    raw: Any,
) -> Event:
    """A ``StorageEvent`` from object metadata; ``bucket`` and ``key`` are fallbacks.

    The event keeps the real bucket name, which the handler needs to read the
    object; the registration is looked up by the bucket's logical name.
    ``occurred_at`` is the event time, else the object's ``updated`` time.

    Raises:
        MalformedEventError: no bucket or object name, or a field of the wrong type.
    """
    what = "Cloud Storage object"
    bucket = optional_text(data, "bucket", what) or bucket
    key = optional_text(data, "name", what) or key
    if not bucket or not key:
        raise MalformedEventError(f"{what} event names no bucket or no object")
    size = data.get("size")
    generation = data.get("generation")
    when = time or data.get("updated")
    name = logical(names, bucket)
    event = StorageEvent(
        id=event_id or f"{bucket}/{key}/{generation or ''}",
        action=action,
        bucket=bucket,
        key=key,
        size=_size(size),
        etag=optional_text(data, "etag", what),
        version=None if generation is None else str(generation),
        content_type=optional_text(data, "contentType", what),
        occurred_at=from_rfc3339(when, f"{what} event time") if when else None,
        raw=raw,
    )
    return Event(Trigger.STORAGE, name, event)


def _size(value: Any) -> int | None:
    # The JSON API writes uint64 as a decimal string.
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MalformedEventError("Cloud Storage object size must be a number")
    try:
        return int(value)
    except ValueError:
        raise MalformedEventError(f"Cloud Storage object size is not a number: {value!r}") from None


def to_native(outcome: object, raw: CloudEventLike, context: Context) -> None:
    """Nothing: functions-framework answers 200 once the function returns."""
    return None
