"""The Confluent wire format: a magic byte, a schema id, then the encoded value.

::

    byte 0      0 (the magic byte)
    bytes 1-4   the schema id, a big-endian unsigned 32-bit integer
    bytes 5-    Avro or JSON: the encoded value
                Protobuf: the message indexes, then the encoded message

The Protobuf message indexes locate the message type in its ``.proto`` file: the
first is a top-level message, each next one a type nested in the previous. They
are written as zigzag varints, their count first; the common ``[0]`` (the file's
first message) is written as the single byte ``0``.
"""

from __future__ import annotations

from polyserve.schema_registry.errors import SchemaError

__all__ = ["MAGIC_BYTE", "decode_message_indexes", "encode", "encode_message_indexes", "split"]

MAGIC_BYTE = 0
_HEADER = 5
# More indexes than any .proto file nests types: a longer count is a corrupt payload.
_MAX_INDEXES = 64


def encode(schema_id: int, payload: bytes, message_indexes: list[int] | None = None) -> bytes:
    """The wire form of ``payload`` written with schema ``schema_id``.

    ``message_indexes`` (Protobuf only) are written between the header and the payload.

    Raises:
        ValueError: ``schema_id`` does not fit in 32 unsigned bits.
    """
    if not 0 <= schema_id <= 0xFFFFFFFF:
        raise ValueError(f"schema id out of range: {schema_id}")
    header = bytes((MAGIC_BYTE,)) + schema_id.to_bytes(4, "big")
    if message_indexes is None:
        return header + payload
    return header + encode_message_indexes(message_indexes) + payload


def split(data: bytes) -> tuple[int, bytes]:
    """The schema id and the rest of a wire-format value.

    Raises:
        SchemaError: code ``invalid_wire_format``, when ``data`` is shorter than the
            header or does not start with the magic byte.
    """
    if len(data) < _HEADER:
        raise SchemaError(
            f"a schema registry value has a {_HEADER}-byte header; got {len(data)} bytes",
            code="invalid_wire_format",
        )
    if data[0] != MAGIC_BYTE:
        raise SchemaError(
            f"a schema registry value starts with the magic byte 0, not {data[0]}",
            code="invalid_wire_format",
        )
    return int.from_bytes(data[1:_HEADER], "big"), bytes(data[_HEADER:])


def encode_message_indexes(indexes: list[int]) -> bytes:
    """The Protobuf message indexes as written after the header (``[0]`` is ``b"\\x00"``).

    Raises:
        ValueError: an index is negative.
    """
    if any(i < 0 for i in indexes):
        raise ValueError(f"message indexes are never negative: {indexes}")
    if indexes == [0]:
        return b"\x00"
    out = bytearray(_varint(len(indexes)))
    for index in indexes:
        out += _varint(index)
    return bytes(out)


def decode_message_indexes(data: bytes) -> tuple[list[int], bytes]:
    """The Protobuf message indexes at the start of ``data``, and the message after them.

    Raises:
        SchemaError: code ``invalid_wire_format``, when the indexes are cut short,
            negative or implausibly many.
    """
    count, pos = _read_varint(data, 0)
    if count == 0:
        return [0], data[pos:]
    if not 0 < count <= _MAX_INDEXES:
        raise SchemaError(f"bad message index count {count}", code="invalid_wire_format")
    indexes = []
    for _ in range(count):
        index, pos = _read_varint(data, pos)
        if index < 0:
            raise SchemaError(f"negative message index {index}", code="invalid_wire_format")
        indexes.append(index)
    return indexes, data[pos:]


def _varint(value: int) -> bytes:
    # Zigzag, then base-128 little-endian groups, as Kafka's ByteUtils.writeVarint.
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    raw = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise SchemaError("the message indexes are cut short", code="invalid_wire_format")
        byte = data[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
