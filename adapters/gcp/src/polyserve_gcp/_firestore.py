"""Firestore document changes, as CloudEvents or background events -> ``StreamRecord``.

A 2nd gen trigger delivers ``DocumentEventData`` as protobuf by default, or as
JSON when the trigger sets ``--event-data-content-type=application/json``; 1st
gen background events are always JSON. Both are read (protobuf by
``_protobuf``) and typed Firestore values become plain Python values:

=================  =====================================================
Firestore value    Python value
=================  =====================================================
null               ``None``
boolean            ``bool``
integer            ``int`` (JSON carries it as a string)
double             ``float`` (``NaN`` and infinities included)
timestamp          ``datetime`` in UTC (microsecond precision)
string             ``str``
bytes              ``bytes``
reference          ``str``: the document's resource name
geo point          ``{"latitude": float, "longitude": float}``
array              ``list``
map                ``dict``
=================  =====================================================

The record's ``source`` is the logical name of the document's collection: the
``names`` mapping applied to the collection path (``users/alice/orders``) or
the collection id (``orders``), else the collection id, so
``@app.stream("orders")`` sees every ``orders`` collection. ``keys`` are
``{"id": document id, "path": document path}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import Event, from_rfc3339, json_object
from polyserve.errors import MalformedEventError
from polyserve.events import ChangeType, StreamRecord
from polyserve.routing import Trigger
from polyserve_gcp._formats import decode_base64
from polyserve_gcp._names import logical

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve_gcp.types import CloudEventLike

__all__ = [
    "LEGACY_KINDS",
    "is_http",
    "kind_of",
    "matches",
    "plain",
    "read_change",
    "to_event",
    "to_native",
]

_PREFIX = "google.cloud.firestore.document.v1."
_CHANGES: dict[str, ChangeType | None] = {
    "created": ChangeType.INSERT,
    "updated": ChangeType.MODIFY,
    "deleted": ChangeType.REMOVE,
    "written": None,  # told apart by which snapshots the event carries
}
LEGACY_KINDS = {
    "providers/cloud.firestore/eventTypes/document.create": "created",
    "providers/cloud.firestore/eventTypes/document.update": "updated",
    "providers/cloud.firestore/eventTypes/document.delete": "deleted",
    "providers/cloud.firestore/eventTypes/document.write": "written",
}


def kind_of(event_type: str) -> str | None:
    """``created``/``updated``/``deleted``/``written`` for a Firestore document event type.

    The ``.withAuthContext`` variants count as their plain kind.
    """
    if not event_type.startswith(_PREFIX):
        return None
    kind = event_type.removeprefix(_PREFIX).split(".", 1)[0]
    return kind if kind in _CHANGES else None


is_http = False


def matches(event: CloudEventLike) -> bool:
    """Whether ``event`` is a Firestore document CloudEvent."""
    event_type = event.get_attributes().get("type")
    return isinstance(event_type, str) and kind_of(event_type) is not None


def to_event(event: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
    """The ``StreamRecord`` of a Firestore document CloudEvent (JSON or protobuf data).

    The document path comes from the ``document`` extension attribute, else the
    ``subject`` (``documents/PATH``), else the snapshots' resource names.
    """
    attrs = event.get_attributes()
    kind = kind_of(str(attrs.get("type")))
    if kind is None:  # matches() said otherwise; keep the error typed all the same
        raise MalformedEventError(f"not a Firestore document event: {attrs.get('type')!r}")
    data = event.get_data()
    if isinstance(data, (bytes, bytearray)) and "json" not in str(
        attrs.get("datacontenttype") or ""
    ):
        from polyserve_gcp._protobuf import decode_document_event

        payload = decode_document_event(bytes(data))
    else:
        payload = json_object(data, "Firestore CloudEvent data")
    path = attrs.get("document")
    subject = attrs.get("subject")
    if not isinstance(path, str) or not path:
        path = subject.removeprefix("documents/") if isinstance(subject, str) else None
    return read_change(
        payload, kind, names, path=path, event_id=str(attrs.get("id") or ""),
        time=attrs.get("time"), raw=event,
    )  # fmt: skip


def read_change(
    data: dict[str, Any],
    kind: str,
    names: Mapping[str, str],
    *,
    path: str | None,
    event_id: str,
    time: Any,
    raw: Any,
) -> Event:
    """A ``StreamRecord`` from ``DocumentEventData`` JSON (``value``, ``oldValue``).

    ``written`` becomes INSERT (no old snapshot), REMOVE (no new one) or MODIFY;
    UPSERT only if the event carries neither. ``sequence`` is the new
    snapshot's ``updateTime``, ``occurred_at`` the event time.

    Raises:
        MalformedEventError: no document path, or a snapshot that is not an object.
    """
    new_doc = _snapshot(data.get("value"), "value")
    old_doc = _snapshot(data.get("oldValue"), "oldValue")
    change = _CHANGES[kind]
    if change is None:
        if new_doc is not None and old_doc is not None:
            change = ChangeType.MODIFY
        elif new_doc is not None:
            change = ChangeType.INSERT
        elif old_doc is not None:
            change = ChangeType.REMOVE
        else:
            change = ChangeType.UPSERT
    document = path or _path_of(new_doc) or _path_of(old_doc)
    segments = document.strip("/").split("/") if document else []
    if len(segments) < 2 or len(segments) % 2 or not all(segments):
        raise MalformedEventError(f"Firestore event has no valid document path: {document!r}")
    collection_path = "/".join(segments[:-1])
    source = logical(names, collection_path, segments[-2])
    sequence = new_doc.get("updateTime") if new_doc is not None else None
    record = StreamRecord(
        id=event_id,
        change=change,
        source=source,
        keys={"id": segments[-1], "path": "/".join(segments)},
        old=_fields(old_doc),
        new=_fields(new_doc),
        sequence=sequence if isinstance(sequence, str) else None,
        occurred_at=from_rfc3339(time, "Firestore event time") if time else None,
        raw=raw,
    )
    return Event(Trigger.STREAM, source, record)


def _snapshot(value: Any, what: str) -> dict[str, Any] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise MalformedEventError(f"Firestore event {what} must be a document object")
    return value


def _path_of(doc: dict[str, Any] | None) -> str | None:
    name = doc.get("name") if doc is not None else None
    if not isinstance(name, str) or "/documents/" not in name:
        return None
    return name.split("/documents/", 1)[1]


def _fields(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    fields = doc.get("fields") or {}
    if not isinstance(fields, dict):
        raise MalformedEventError("Firestore document fields must be an object")
    return {name: plain(value) for name, value in fields.items()}


_SPECIAL_DOUBLES = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def plain(value: Any) -> Any:
    """One Firestore ``Value`` (JSON form) as a plain Python value (see the module table).

    A value of a type this version does not know is returned unchanged, so a new
    Firestore type never fails an event.

    Raises:
        MalformedEventError: a known type with a value of the wrong shape, or maps and
            arrays nested too deeply to read.
    """
    if not isinstance(value, dict):
        raise MalformedEventError(f"a Firestore value must be an object, got {value!r}")
    if not value:
        return None
    try:
        for kind, convert in _CONVERTERS.items():
            if kind in value:
                return convert(value[kind])
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedEventError(f"malformed Firestore value {value!r}: {exc}") from None
    except RecursionError:  # no repr here: the value is the deep one
        raise MalformedEventError("a Firestore value is nested too deeply") from None
    return value


def _boolean(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise TypeError("booleanValue must be true or false")
    return raw


def _integer(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise TypeError("integerValue must be a decimal string")
    return int(raw)


def _double(raw: Any) -> float:
    if isinstance(raw, str):
        return _SPECIAL_DOUBLES[raw] if raw in _SPECIAL_DOUBLES else float(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeError("doubleValue must be a number")
    return float(raw)


def _string(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError("expected a string")
    return raw


def _geo_point(raw: Any) -> dict[str, float]:
    return {
        "latitude": _double(raw.get("latitude", 0)),
        "longitude": _double(raw.get("longitude", 0)),
    }


def _array(raw: Any) -> list[Any]:
    values = raw.get("values") or []
    if not isinstance(values, list):
        raise TypeError("arrayValue.values must be a list")
    return [plain(item) for item in values]


def _map(raw: Any) -> dict[str, Any]:
    fields = raw.get("fields") or {}
    if not isinstance(fields, dict):
        raise TypeError("mapValue.fields must be an object")
    return {name: plain(item) for name, item in fields.items()}


_CONVERTERS: dict[str, Any] = {
    "nullValue": lambda raw: None,
    "booleanValue": _boolean,
    "integerValue": _integer,
    "doubleValue": _double,
    "timestampValue": lambda raw: from_rfc3339(raw, "Firestore timestampValue"),
    "stringValue": _string,
    "bytesValue": lambda raw: decode_base64(raw, "Firestore bytesValue"),
    "referenceValue": _string,
    "geoPointValue": _geo_point,
    "arrayValue": _array,
    "mapValue": _map,
}


def to_native(outcome: object, raw: CloudEventLike, context: Context) -> None:
    """Nothing: functions-framework answers 200 once the function returns."""
    return None
