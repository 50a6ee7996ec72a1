"""R2 event notifications: a queue message from R2 in, a ``StorageEvent`` out.

R2 delivers a bucket's object notifications to a queue, one JSON message per
change, with ``account``, ``bucket``, ``action``, ``object`` (``key``, and for new
objects ``size`` and ``eTag``), ``eventTime`` and, for copies, ``copySource``. A
batch from a queue that no ``@app.queue`` registration consumes, in an app with
``@app.storage`` registrations, is read this way; each message reaches the
``@app.storage`` registration of its bucket (``names[bucket]`` when mapped).

| R2 ``action`` | ``StorageAction`` |
|---|---|
| ``PutObject``, ``CopyObject``, ``CompleteMultipartUpload`` | ``CREATED`` |
| ``DeleteObject``, ``LifecycleDeletion`` | ``DELETED`` |

R2 sends no event id: the queue message's id is the event's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.adapter import as_object, from_rfc3339, json_object, optional_text, text, translating
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve.events import StorageAction, StorageEvent

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve_cloudflare.types import JsQueueMessage, JsRuntime

__all__ = ["ACTIONS", "to_storage_event"]

ACTIONS: dict[str, StorageAction] = {
    "PutObject": StorageAction.CREATED,
    "CopyObject": StorageAction.CREATED,
    "CompleteMultipartUpload": StorageAction.CREATED,
    "DeleteObject": StorageAction.DELETED,
    "LifecycleDeletion": StorageAction.DELETED,
}
"""Each R2 notification action and the storage action it becomes."""

_WHAT = "R2 event notification"


def to_storage_event(
    message: JsQueueMessage, runtime: JsRuntime, names: Mapping[str, str]
) -> tuple[str, StorageEvent]:
    """The registration name (the bucket's logical name) and the ``StorageEvent``.

    Raises:
        MalformedEventError: the body is not an R2 notification.
        UnsupportedEventError: an action R2 may add later, which has no storage action.
    """
    from polyserve_cloudflare._queue import body_bytes

    data = json_object(body_bytes(message.body, runtime), _WHAT)
    with translating(_WHAT):
        action_name = text(data, "action", _WHAT)
        action = ACTIONS.get(action_name)
        if action is None:
            raise UnsupportedEventError(
                f"R2 notification action {action_name!r} has no polyserve storage action",
                description={"source": "r2", "action": action_name},
            )
        bucket = text(data, "bucket", _WHAT)
        obj = as_object(data.get("object"), _WHAT, "object")
        size = obj.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise MalformedEventError(f"{_WHAT} object.size is not a size: {size!r}")
        event_time = data.get("eventTime")
        event = StorageEvent(
            id=str(message.id),
            action=action,
            bucket=bucket,
            key=text(obj, "key", _WHAT),
            size=size,
            etag=optional_text(obj, "eTag", _WHAT),
            occurred_at=None
            if event_time is None
            else from_rfc3339(event_time, f"{_WHAT} eventTime"),
            raw=message,
        )
    return names.get(bucket, bucket), event
