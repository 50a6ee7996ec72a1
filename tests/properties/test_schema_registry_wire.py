"""The schema registry wire format: what is encoded splits back; any bytes decode or fail typed."""

from __future__ import annotations

import io
import json
from functools import partial
from typing import TYPE_CHECKING, Any

import fastavro
from hypothesis import given
from hypothesis import strategies as st

from polyserve.schema_registry import (
    Schema,
    SchemaError,
    SchemaRegistry,
    decode_message_indexes,
    encode,
    split,
)
from polyserve_testkit.strategies import message_indexes, nested_json

if TYPE_CHECKING:
    from collections.abc import Callable

SCHEMA_IDS = st.integers(0, 2**32 - 1)

READING = {
    "type": "record", "name": "Reading", "namespace": "plant",
    "fields": [
        {"name": "sensor", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "raw", "type": ["null", "bytes"]},
    ],
}  # fmt: skip
_PARSED = fastavro.parse_schema(READING)
REGISTRY = SchemaRegistry(
    schemas={7: Schema("AVRO", json.dumps(READING)), 8: Schema("JSON", "true")},
    validate_json=False,
)
VALIDATING = SchemaRegistry(
    schemas={8: Schema("JSON", '{"items": {"$ref": "#"}, "additionalProperties": {"$ref": "#"}}')}
)


@given(SCHEMA_IDS, st.binary(max_size=64))
def test_a_value_splits_back_into_its_schema_id_and_payload(schema_id: int, payload: bytes) -> None:
    assert split(encode(schema_id, payload)) == (schema_id, payload)


@given(SCHEMA_IDS, message_indexes(), st.binary(max_size=64))
def test_protobuf_message_indexes_read_back(
    schema_id: int, indexes: list[int], payload: bytes
) -> None:
    found_id, rest = split(encode(schema_id, payload, indexes))
    assert found_id == schema_id
    assert decode_message_indexes(rest) == (indexes, payload)


def _failure(call: Callable[[], object]) -> str | None:
    """The code of the ``SchemaError`` ``call`` raises, ``None`` when it returns."""
    try:
        call()
    except SchemaError as exc:
        return exc.code
    return None


@given(st.binary(max_size=40))
def test_any_bytes_decode_or_fail_with_a_schema_error(data: bytes) -> None:
    def read() -> None:
        _, rest = split(data)
        decode_message_indexes(rest)

    assert _failure(read) in (None, "invalid_wire_format")


@given(
    st.fixed_dictionaries({
        "sensor": st.text(max_size=8),
        "value": st.floats(allow_nan=False),
        "tags": st.lists(st.text(max_size=4), max_size=3),
        "raw": st.none() | st.binary(max_size=8),
    })
)  # fmt: skip
def test_avro_records_round_trip_through_the_wire_format(record: dict[str, Any]) -> None:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _PARSED, record)
    assert REGISTRY.decode(encode(7, out.getvalue())) == record


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_json_values_round_trip_through_the_wire_format(value: Any) -> None:
    assert REGISTRY.decode(encode(8, json.dumps(value).encode())) == value


@given(nested_json())
def test_json_nested_past_the_parsers_stack_fails_typed(body: bytes) -> None:
    for registry in (REGISTRY, VALIDATING):
        assert _failure(partial(registry.decode, encode(8, body))) in (None, "undecodable_payload")


@given(st.binary(max_size=40))
def test_any_avro_payload_decodes_or_fails_typed(payload: bytes) -> None:
    assert _failure(lambda: REGISTRY.decode(encode(7, payload))) in (None, "undecodable_payload")
