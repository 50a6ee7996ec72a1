"""EventBridge: rule events, scheduled rules, EventBridge Scheduler and S3 via EventBridge.

Recognised by the envelope's ``detail-type`` and ``source`` fields, or by a
``polyserve_schedule`` field (below). In that order of precedence:

* ``source: aws.s3`` with an object ``detail-type`` -> ``StorageEvent`` for the
  ``Trigger.STORAGE`` registration named after the bucket. ``Object Created`` created,
  ``Object Deleted`` deleted, ``Object Restore Completed`` restored,
  ``Object Storage Class Changed``/``Object Access Tier Changed`` archived,
  ``Object Tags Added``/``Object Tags Deleted``/``Object ACL Updated`` metadata_updated.
  The key is URL-decoded as in direct notifications. Other S3 types are CloudEvents.
* ``detail-type: Scheduled Event`` from ``aws.events`` (a scheduled rule) or
  ``aws.scheduler`` -> ``ScheduleEvent`` for the ``Trigger.SCHEDULE`` registration named
  after the rule or schedule in ``resources[0]`` (its last ARN part, or its entry in
  ``names``). ``detail`` is the payload (``None`` when empty).
* anything else -> ``CloudEvent`` for the ``Trigger.CLOUDEVENT`` registration of its
  type: ``id``, ``source`` and ``time`` as they are, ``detail-type`` the type, ``detail``
  the data (``application/json``), and ``account``, ``region`` and ``resources`` as
  extensions. When ``detail`` is itself a CloudEvent in the structured JSON form, with
  the envelope's ``source`` and ``detail-type`` as its source and type (as
  ``polyserve_aws.outbound`` puts a ``CloudEvent``), the event is that CloudEvent, and its
  ``traceparent`` extension the trace the handler continues.

An EventBridge Scheduler target, or a rule target with its own input, receives that
input and nothing else, so it cannot be recognised. Send this input instead::

    {"polyserve_schedule": "nightly-report",
     "id": "<aws.scheduler.execution-id>",
     "scheduled_at": "<aws.scheduler.scheduled-time>",
     "payload": {...}}

``polyserve_schedule`` names the registration (through ``names`` if mapped); ``id``,
``scheduled_at`` and ``payload`` are optional (the id defaults to Lambda's request id).

All of these are asynchronous invocations: a failure raises, so Lambda's retries and
failure destination apply.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from polyserve.adapter import Event, as_object, from_rfc3339, optional_text, text, translating
from polyserve.errors import MalformedEventError
from polyserve.events import CloudEvent, ScheduleEvent, StorageAction, StorageEvent
from polyserve.routing import Trigger
from polyserve_aws._wire import logical_name

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from polyserve.context import Context

__all__ = ["SCHEDULE_FIELD", "is_http", "matches", "to_event", "to_native"]

is_http = False

SCHEDULE_FIELD = "polyserve_schedule"
"""The field that marks a custom Scheduler input as a polyserve schedule."""

_WHAT = "EventBridge event"

_SCHEDULE_SOURCES = frozenset({"aws.events", "aws.scheduler"})

_S3_ACTIONS: dict[str, StorageAction] = {
    "Object Created": StorageAction.CREATED,
    "Object Deleted": StorageAction.DELETED,
    "Object Restore Completed": StorageAction.RESTORED,
    "Object Storage Class Changed": StorageAction.ARCHIVED,
    "Object Access Tier Changed": StorageAction.ARCHIVED,
    "Object Tags Added": StorageAction.METADATA_UPDATED,
    "Object Tags Deleted": StorageAction.METADATA_UPDATED,
    "Object ACL Updated": StorageAction.METADATA_UPDATED,
}


def matches(raw: dict[str, Any]) -> bool:
    """True for an EventBridge envelope or a ``polyserve_schedule`` input."""
    return ("detail-type" in raw and "source" in raw) or SCHEDULE_FIELD in raw


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Event:
    """The event, for its registration.

    Raises:
        MalformedEventError: a required field is missing or has the wrong type.
    """
    with translating(_WHAT):
        if SCHEDULE_FIELD in raw:
            return _schedule_input(raw, context, names)
        source = text(raw, "source", _WHAT)
        detail_type = text(raw, "detail-type", _WHAT)
        if source == "aws.s3" and detail_type in _S3_ACTIONS:
            return _storage(raw, _S3_ACTIONS[detail_type], names)
        if detail_type == "Scheduled Event" and source in _SCHEDULE_SOURCES:
            return _scheduled(raw, names)
        return _cloud_event(raw, source, detail_type)


def _time(raw: dict[str, Any], key: str) -> dt.datetime | None:
    value = raw.get(key)
    return None if value is None else from_rfc3339(value, f"{_WHAT} {key}")


def _schedule_input(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> Event:
    name = text(raw, SCHEDULE_FIELD, "schedule input")
    event = ScheduleEvent(
        id=optional_text(raw, "id", "schedule input") or context.invocation_id,
        name=name,
        scheduled_at=_time(raw, "scheduled_at"),
        payload=raw.get("payload"),
        raw=raw,
    )
    return Event(Trigger.SCHEDULE, names.get(name, name), event)


def _scheduled(raw: dict[str, Any], names: Mapping[str, str]) -> Event:
    resources = raw.get("resources")
    if not isinstance(resources, list) or not resources or not isinstance(resources[0], str):
        raise MalformedEventError(f"scheduled {_WHAT} has no rule or schedule ARN in resources")
    name = logical_name(resources[0], names)
    event = ScheduleEvent(
        id=text(raw, "id", _WHAT),
        name=name,
        scheduled_at=_time(raw, "time"),
        payload=raw.get("detail") or None,
        raw=raw,
    )
    return Event(Trigger.SCHEDULE, name, event)


def _storage(raw: dict[str, Any], action: StorageAction, names: Mapping[str, str]) -> Event:
    detail = as_object(raw.get("detail"), _WHAT, "detail")
    bucket = text(as_object(detail.get("bucket"), _WHAT, "detail.bucket"), "name", _WHAT)
    obj = as_object(detail.get("object"), _WHAT, "detail.object")
    size = obj.get("size")
    event = StorageEvent(
        id=text(raw, "id", _WHAT),
        action=action,
        bucket=bucket,
        key=unquote_plus(text(obj, "key", _WHAT)),
        size=None if size is None else int(size),
        etag=optional_text(obj, "etag", _WHAT),
        version=optional_text(obj, "version-id", _WHAT),
        occurred_at=_time(raw, "time"),
        raw=raw,
    )
    resources = raw.get("resources")
    arn = resources[0] if isinstance(resources, list) and resources else None
    name = names.get(arn, "") if isinstance(arn, str) and names else ""
    return Event(Trigger.STORAGE, name or logical_name(bucket, names), event)


def _cloud_event(raw: dict[str, Any], source: str, detail_type: str) -> Event:
    detail = raw.get("detail")
    if (
        isinstance(detail, dict)
        and "specversion" in detail
        and detail.get("source") == source
        and detail.get("type") == detail_type
    ):
        # A CloudEvent put in its structured form (as ``polyserve_aws.outbound`` does).
        from polyserve.outbound.cloudevents import from_dict

        event = replace(from_dict(detail), raw=raw)
        return Event(Trigger.CLOUDEVENT, detail_type, event)
    extensions: dict[str, Any] = {
        key: raw[key] for key in ("account", "region", "resources") if key in raw
    }
    event = CloudEvent(
        id=text(raw, "id", _WHAT),
        source=source,
        type=detail_type,
        time=_time(raw, "time"),
        datacontenttype="application/json",
        data=raw.get("detail"),
        extensions=extensions,
        raw=raw,
    )
    return Event(Trigger.CLOUDEVENT, detail_type, event)


def to_native(result: object, raw: dict[str, Any], context: Context) -> None:
    """EventBridge ignores what a function returns: the invocation returns ``null``."""
    return None
