"""Firebase Realtime Database changes, as CloudEvents -> ``StreamRecord``.

The 2nd gen triggers deliver ``google.firebase.database.ref.v1.{created,updated,
deleted,written}`` with the reference in ``subject`` (``refs/users/alice``) and
``ReferenceEventData`` as data: ``data`` is the value before the change and
``delta`` the change. The value after is ``data`` with ``delta`` applied the way
the database applies an update: objects merge key by key, ``null`` removes a
key, anything else replaces.

The record's ``source`` is the logical name of the parent path (``users``): the
``names`` mapping applied to the parent path, else the parent's last segment, so
``@app.stream("users")`` sees changes to every ``users/<id>``. ``keys`` are
``{"id": last segment, "path": reference path}``. ``old`` and ``new`` are the
values before and after; a value that is not an object is given as
``{"value": v}``, since a stream record's images are mappings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import Event, from_rfc3339, json_object
from polyserve.errors import MalformedEventError
from polyserve.events import ChangeType, StreamRecord
from polyserve.routing import Trigger
from polyserve_gcp._names import logical

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve_gcp.types import CloudEventLike

__all__ = [
    "apply_delta",
    "is_http",
    "matches",
    "to_event",
]

_PREFIX = "google.firebase.database.ref.v1."
_CHANGES: dict[str, ChangeType | None] = {
    "created": ChangeType.INSERT,
    "updated": ChangeType.MODIFY,
    "deleted": ChangeType.REMOVE,
    "written": None,  # told apart by the values before and after
}
_MAX_DEPTH = 64


is_http = False


def matches(event: CloudEventLike) -> bool:
    """Whether ``event`` is a Realtime Database reference CloudEvent."""
    event_type = event.get_attributes().get("type")
    return isinstance(event_type, str) and event_type.removeprefix(_PREFIX) in _CHANGES


def to_event(event: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
    """The ``StreamRecord`` of a Realtime Database CloudEvent.

    Raises:
        MalformedEventError: no reference path, or data that is not an object.
    """
    attrs = event.get_attributes()
    kind = str(attrs.get("type")).removeprefix(_PREFIX)
    if kind not in _CHANGES:
        raise MalformedEventError(f"not a Realtime Database event: {attrs.get('type')!r}")
    subject = attrs.get("subject") or attrs.get("ref")
    path = subject.removeprefix("refs/").strip("/") if isinstance(subject, str) else ""
    segments = path.split("/") if path else []
    if not segments or not all(segments):
        raise MalformedEventError(f"Realtime Database event has no reference: {subject!r}")
    data = json_object(event.get_data(), "Realtime Database CloudEvent data")
    before = data.get("data")
    after = apply_delta(before, data.get("delta"))
    change = _CHANGES[kind]
    if change is None:
        if before is not None and after is not None:
            change = ChangeType.MODIFY
        elif after is not None:
            change = ChangeType.INSERT
        else:
            change = ChangeType.REMOVE
    parent = "/".join(segments[:-1])
    source = logical(names, parent, segments[-2] if len(segments) > 1 else "") or "/"
    when = attrs.get("time")
    record = StreamRecord(
        id=str(attrs.get("id") or ""),
        change=change,
        source=source,
        keys={"id": segments[-1], "path": path},
        old=_image(before),
        new=_image(after),
        occurred_at=when if not isinstance(when, str) else from_rfc3339(when, "event time"),
        raw=event,
    )
    return Event(Trigger.STREAM, source, record)


def apply_delta(value: Any, delta: Any, depth: int = 0) -> Any:
    """``value`` after ``delta``: objects merge (``None`` removes a key), else ``delta`` wins.

    Raises:
        MalformedEventError: the delta is nested too deeply to apply.
    """
    if depth > _MAX_DEPTH:
        raise MalformedEventError("a Realtime Database delta is nested too deeply")
    if not isinstance(delta, dict) or not isinstance(value, dict):
        return delta
    merged = dict(value)
    for key, change in delta.items():
        if change is None:
            merged.pop(key, None)
        else:
            merged[key] = apply_delta(merged.get(key), change, depth + 1)
    return merged or None


def _image(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return value if isinstance(value, dict) else {"value": value}


def to_native(outcome: object, raw: CloudEventLike, context: Context) -> None:
    """Nothing: functions-framework answers 200 once the function returns."""
    return None
