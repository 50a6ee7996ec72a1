"""Firestore's ``DocumentEventData`` protobuf, read without the protobuf runtime.

Eventarc delivers Firestore events as ``application/protobuf`` unless the trigger
asks for ``application/json``. Rather than depend on ``protobuf`` and the
generated ``google-events`` classes, this module reads the wire format of the
one schema involved (``google/events/cloud/firestore/v1/data.proto``) and
returns the proto3 JSON form of the same message, so both encodings go through
one converter. Unknown fields are skipped, as protobuf parsers do.
"""

from __future__ import annotations

import datetime as dt
import struct
from base64 import b64encode
from typing import TYPE_CHECKING, Any

from polyserve.errors import MalformedEventError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["decode_document_event"]

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

_Field = tuple[int, int, Any]  # (field number, wire type, int or bytes)


def decode_document_event(data: bytes) -> dict[str, Any]:
    """``DocumentEventData`` bytes as ``{"value", "oldValue", "updateMask"}`` JSON.

    Raises:
        MalformedEventError: the bytes are not a valid ``DocumentEventData``.
    """
    try:
        return _document_event(bytes(data))
    except (ValueError, IndexError, OverflowError, UnicodeDecodeError, struct.error) as exc:
        raise MalformedEventError(
            f"Firestore event data is not a valid DocumentEventData protobuf: {exc}"
        ) from None
    except RecursionError:  # maps and arrays nested past the stack
        raise MalformedEventError(
            "Firestore event data is not a valid DocumentEventData protobuf: nested too deeply"
        ) from None


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than ten bytes")


def _take(buf: bytes, pos: int, size: int) -> tuple[bytes, int]:
    end = pos + size
    if end > len(buf):
        raise ValueError("field runs past the end of the message")
    return buf[pos:end], end


def _fields(buf: bytes) -> Iterator[_Field]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: Any
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _FIXED64:
            value, pos = _take(buf, pos, 8)
        elif wire == _LENGTH:
            size, pos = _varint(buf, pos)
            value, pos = _take(buf, pos, size)
        elif wire == _FIXED32:
            value, pos = _take(buf, pos, 4)
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _expect(wire: int, wanted: int, number: int) -> None:
    if wire != wanted:
        raise ValueError(f"field {number} has wire type {wire}, expected {wanted}")


def _document_event(buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, wire, value in _fields(buf):
        if number in (1, 2):
            _expect(wire, _LENGTH, number)
            out["value" if number == 1 else "oldValue"] = _document(value)
        elif number == 3:
            _expect(wire, _LENGTH, number)
            paths = out.setdefault("updateMask", {}).setdefault("fieldPaths", [])
            for n, w, path in _fields(value):
                if n == 1:
                    _expect(w, _LENGTH, n)
                    paths.append(path.decode("utf-8"))
    return out


def _document(buf: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = {"fields": {}}
    for number, wire, value in _fields(buf):
        if number == 1:
            _expect(wire, _LENGTH, number)
            doc["name"] = value.decode("utf-8")
        elif number == 2:
            _expect(wire, _LENGTH, number)
            key, item = _map_entry(value)
            doc["fields"][key] = item
        elif number in (3, 4):
            _expect(wire, _LENGTH, number)
            doc["createTime" if number == 3 else "updateTime"] = _timestamp(value)
    return doc


def _map_entry(buf: bytes) -> tuple[str, dict[str, Any]]:
    key, value = "", {}
    for number, wire, raw in _fields(buf):
        if number == 1:
            _expect(wire, _LENGTH, number)
            key = raw.decode("utf-8")
        elif number == 2:
            _expect(wire, _LENGTH, number)
            value = _value(raw)
    return key, value


def _value(buf: bytes) -> dict[str, Any]:
    """One ``Value``; of a oneof, the last field on the wire wins, as in protobuf."""
    out: dict[str, Any] = {}
    for number, wire, raw in _fields(buf):
        kind = _VALUE_FIELDS.get(number)
        if kind is None:
            continue
        name, wanted, convert = kind
        _expect(wire, wanted, number)
        out = {name: convert(raw)}
    return out


def _signed64(raw: int) -> str:
    # int64 travels as a ten-byte two's complement varint when negative.
    return str(raw - (1 << 64) if raw >= 1 << 63 else raw)


def _double(raw: bytes) -> float:
    value: float = struct.unpack("<d", raw)[0]
    return value


def _timestamp(buf: bytes) -> str:
    seconds = nanos = 0
    for number, wire, raw in _fields(buf):
        if number == 1:
            _expect(wire, _VARINT, number)
            seconds = raw - (1 << 64) if raw >= 1 << 63 else raw
        elif number == 2:
            _expect(wire, _VARINT, number)
            nanos = raw
    if not 0 <= nanos < 1_000_000_000:
        raise ValueError(f"timestamp nanos out of range: {nanos}")
    when = _EPOCH + dt.timedelta(seconds=seconds)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}T"
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}{fraction}Z"
    )


def _lat_lng(buf: bytes) -> dict[str, float]:
    point = {"latitude": 0.0, "longitude": 0.0}
    for number, wire, raw in _fields(buf):
        if number in (1, 2):
            _expect(wire, _FIXED64, number)
            point["latitude" if number == 1 else "longitude"] = _double(raw)
    return point


def _array(buf: bytes) -> dict[str, Any]:
    values = []
    for number, wire, raw in _fields(buf):
        if number == 1:
            _expect(wire, _LENGTH, number)
            values.append(_value(raw))
    return {"values": values}


def _map(buf: bytes) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for number, wire, raw in _fields(buf):
        if number == 1:
            _expect(wire, _LENGTH, number)
            key, value = _map_entry(raw)
            fields[key] = value
    return {"fields": fields}


# Value field number -> (JSON name, wire type, converter), from google.events.cloud.firestore.v1.
_VALUE_FIELDS: dict[int, tuple[str, int, Any]] = {
    11: ("nullValue", _VARINT, lambda raw: None),
    1: ("booleanValue", _VARINT, bool),
    2: ("integerValue", _VARINT, _signed64),
    3: ("doubleValue", _FIXED64, _double),
    10: ("timestampValue", _LENGTH, _timestamp),
    17: ("stringValue", _LENGTH, lambda raw: raw.decode("utf-8")),
    18: ("bytesValue", _LENGTH, lambda raw: b64encode(raw).decode("ascii")),
    5: ("referenceValue", _LENGTH, lambda raw: raw.decode("utf-8")),
    8: ("geoPointValue", _LENGTH, _lat_lng),
    9: ("arrayValue", _LENGTH, _array),
    6: ("mapValue", _LENGTH, _map),
}
