"""S3 event notifications sent straight to the function.

Recognised by ``Records[0].eventSource == "aws:s3"``. Each record becomes a
``StorageEvent`` for the ``Trigger.STORAGE`` registration named after the bucket (or
its entry in ``names``, by bucket name or ARN). S3 invokes asynchronously, so a failure
raises and Lambda's retries and failure destination apply. Should an event carry
several records, they are handled in order and the first failure raises.

The object key arrives URL-encoded, with ``+`` for a space; it is decoded. The event's
``id`` is the S3 request id and the object's ``sequencer``, joined by ``/``.

``eventName`` to action: ``ObjectCreated:*`` created; ``ObjectRemoved:*`` and
``LifecycleExpiration:*`` deleted; ``ObjectRestore:Completed`` restored;
``LifecycleTransition`` and ``IntelligentTiering`` archived; ``ObjectTagging:*`` and
``ObjectAcl:Put`` metadata_updated. Other notifications (replication, restore started,
lost objects) raise ``UnsupportedEventError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from polyserve.adapter import (
    Batch,
    Event,
    as_object,
    from_rfc3339,
    optional_text,
    text,
    translating,
)
from polyserve.errors import UnsupportedEventError
from polyserve.events import StorageAction, StorageEvent
from polyserve.routing import Trigger
from polyserve_aws._batch import one_or_ordered, raise_first_failure
from polyserve_aws._wire import first_record, logical_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context

__all__ = ["is_http", "matches", "storage_action", "storage_event", "to_event", "to_native"]

is_http = False

_WHAT = "S3 notification record"

_ACTIONS: dict[str, StorageAction] = {
    "ObjectCreated": StorageAction.CREATED,
    "ObjectRemoved": StorageAction.DELETED,
    "LifecycleExpiration": StorageAction.DELETED,
    "ObjectRestore:Completed": StorageAction.RESTORED,
    "LifecycleTransition": StorageAction.ARCHIVED,
    "IntelligentTiering": StorageAction.ARCHIVED,
    "ObjectTagging": StorageAction.METADATA_UPDATED,
    "ObjectAcl": StorageAction.METADATA_UPDATED,
}


def matches(raw: dict[str, Any]) -> bool:
    """True for an S3 event notification."""
    record = first_record(raw)
    return record is not None and record.get("eventSource") == "aws:s3"


def storage_action(event_name: str) -> StorageAction | None:
    """The action for an S3 ``eventName`` such as ``ObjectCreated:Put``, if it has one."""
    return _ACTIONS.get(event_name) or _ACTIONS.get(event_name.split(":", 1)[0])


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Event | Batch:
    """The notification, for the bucket's registration.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
        UnsupportedEventError: the ``eventName`` is not one polyserve maps to an action.
    """
    return one_or_ordered(
        Trigger.STORAGE, raw["Records"], lambda record: storage_event(record, names), _event_id
    )


def _event_id(record: dict[str, Any]) -> str:
    return str(record["s3"]["object"]["key"])


def storage_event(record: Any, names: Mapping[str, str]) -> tuple[str, StorageEvent]:
    """``(registration name, StorageEvent)`` for one S3 record.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
        UnsupportedEventError: the ``eventName`` is not one polyserve maps to an action.
    """
    with translating(_WHAT):
        record = as_object(record, _WHAT)
        event_name = text(record, "eventName", _WHAT)
        action = storage_action(event_name)
        if action is None:
            raise UnsupportedEventError(
                f"S3 notification {event_name!r} has no polyserve storage action",
                description={"eventSource": "aws:s3", "eventName": event_name},
            )
        s3 = as_object(record.get("s3"), _WHAT, "s3")
        bucket = as_object(s3.get("bucket"), _WHAT, "s3.bucket")
        obj = as_object(s3.get("object"), _WHAT, "s3.object")
        bucket_name = text(bucket, "name", _WHAT)
        bucket_arn = optional_text(bucket, "arn", _WHAT)
        size = obj.get("size")
        request_id = (record.get("responseElements") or {}).get("x-amz-request-id")
        ident = "/".join(p for p in (request_id, obj.get("sequencer")) if isinstance(p, str))
        event_time = record.get("eventTime")
        event = StorageEvent(
            id=ident,
            action=action,
            bucket=bucket_name,
            key=unquote_plus(text(obj, "key", _WHAT)),
            size=None if size is None else int(size),
            etag=optional_text(obj, "eTag", _WHAT),
            version=optional_text(obj, "versionId", _WHAT),
            occurred_at=None
            if event_time is None
            else from_rfc3339(event_time, f"{_WHAT} eventTime"),
            raw=record,
        )
    name = names.get(bucket_arn, "") if bucket_arn and names else ""
    return name or logical_name(bucket_name, names), event


def to_native(result: object, raw: dict[str, Any], context: Context) -> None:
    """S3 ignores what a function returns: the invocation returns ``null``.

    Raises:
        Exception: the first failure of a several-record event, so Lambda retries.
    """
    raise_first_failure(result)
