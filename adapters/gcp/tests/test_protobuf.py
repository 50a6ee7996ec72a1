"""The DocumentEventData protobuf reader, against hand-computed wire bytes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from adapters.gcp.tests.support import encode_document_event, encode_value, load

from polyserve.errors import MalformedEventError
from polyserve_gcp import _protobuf
from polyserve_gcp._protobuf import decode_document_event

# Each row: Value bytes written out by hand from the protobuf encoding rules, and
# the proto3 JSON of the same Value.
HAND_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("8a 01 02 68 69", {"stringValue": "hi"}),  # field 17, wire 2: key varint 0x8a 0x01
    ("10 96 01", {"integerValue": "150"}),  # the protobuf guide's varint example
    ("10 ff ff ff ff ff ff ff ff ff 01", {"integerValue": "-1"}),  # ten-byte negative
    ("08 01", {"booleanValue": True}),
    ("08 00", {"booleanValue": False}),
    ("19 00 00 00 00 00 00 f8 3f", {"doubleValue": 1.5}),  # little-endian IEEE 754
    ("58 00", {"nullValue": None}),  # field 11, wire 0
    ("92 01 03 00 ff 10", {"bytesValue": "AP8Q"}),
    ("2a 03 61 2f 62", {"referenceValue": "a/b"}),
    ("52 04 08 01 10 05", {"timestampValue": "1970-01-01T00:00:01.000000005Z"}),
    ("52 00", {"timestampValue": "1970-01-01T00:00:00Z"}),
    (
        "42 12 09 00 00 00 00 00 00 f0 3f 11 00 00 00 00 00 00 00 c0",
        {"geoPointValue": {"latitude": 1.0, "longitude": -2.0}},
    ),
    ("4a 04 0a 02 08 01", {"arrayValue": {"values": [{"booleanValue": True}]}}),
    (
        "32 09 0a 07 0a 01 6b 12 02 08 01",
        {"mapValue": {"fields": {"k": {"booleanValue": True}}}},
    ),
    ("", {}),
]


@pytest.mark.parametrize(("wire", "expected"), HAND_VALUES)
def test_values_from_hand_written_bytes(wire: str, expected: dict[str, Any]) -> None:
    assert _protobuf._value(bytes.fromhex(wire)) == expected


@pytest.mark.parametrize(("wire", "value"), [row for row in HAND_VALUES if row[1]])
def test_the_test_writer_produces_the_same_bytes(wire: str, value: dict[str, Any]) -> None:
    # The writer builds the samples, so it must agree with the hand-written bytes.
    assert encode_value(value).hex(" ") == wire


def test_a_whole_event_from_hand_written_bytes() -> None:
    # DocumentEventData{value: Document{name: "x", create_time: {seconds: 1}},
    #                   update_mask: {field_paths: ["a"]}}
    wire = bytes.fromhex("0a 07 0a 01 78 1a 02 08 01 1a 03 0a 01 61")
    assert decode_document_event(wire) == {
        "value": {"name": "x", "fields": {}, "createTime": "1970-01-01T00:00:01Z"},
        "updateMask": {"fieldPaths": ["a"]},
    }


def test_unknown_fields_are_skipped() -> None:
    # A Value with field 99 (varint) and field 100 (fixed32) before its string.
    wire = bytes.fromhex("98 06 07 a5 06 01 02 03 04 8a 01 01 7a")
    assert _protobuf._value(wire) == {"stringValue": "z"}


def test_the_last_oneof_field_wins() -> None:
    assert _protobuf._value(bytes.fromhex("08 01 8a 01 01 7a")) == {"stringValue": "z"}


def test_samples_survive_a_round_trip() -> None:
    data = load("firestore-updated.json")["data"]
    assert decode_document_event(encode_document_event(data)) == data


def test_special_doubles_and_empty_containers() -> None:
    data = load("firestore-created.json")["data"]
    fields = decode_document_event(encode_document_event(data))["value"]["fields"]
    assert math.isnan(fields["ratio"]["doubleValue"])
    assert fields["vet"]["mapValue"]["fields"]["visits"] == {"arrayValue": {"values": []}}


@pytest.mark.parametrize(
    "wire",
    [
        "0a 05 0a 01",  # length runs past the end
        "0a",  # truncated length
        "0b",  # wire type 3 (start group)
        "00 01",  # field number 0
        "08 01",  # value (field 1) must be length-delimited
        "0a 04 0a 02 c3 28",  # document name is not UTF-8
        "0a 0a 1a 08 08 01 10 80 94 eb dc 03",  # nanos of one full second
        "0a 0d 1a 0b 08 ff ff ff ff ff ff ff ff ff ff",  # varint longer than ten bytes
    ],
)
def test_broken_bytes_are_malformed(wire: str) -> None:
    with pytest.raises(MalformedEventError, match="DocumentEventData"):
        decode_document_event(bytes.fromhex(wire))


def _length_delimited(tag: int, payload: bytes) -> bytes:
    size, length = bytearray(), len(payload)
    while True:
        byte, length = length & 0x7F, length >> 7
        size.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([tag]) + bytes(size) + payload


def test_arrays_nested_past_the_stack_are_malformed() -> None:
    value = b""
    for _ in range(5_000):  # Value{array_value: ArrayValue{values: [value]}}
        value = _length_delimited(0x4A, _length_delimited(0x0A, value))
    entry = _length_delimited(0x0A, b"k") + _length_delimited(0x12, value)  # fields["k"]
    event = _length_delimited(0x0A, _length_delimited(0x12, entry))  # value: Document
    with pytest.raises(MalformedEventError, match="nested too deeply"):
        decode_document_event(event)
