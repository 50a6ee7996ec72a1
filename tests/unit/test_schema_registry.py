"""Schema registry decoding against a registry on a loopback port, with payloads built here."""

from __future__ import annotations

import base64
import io
import json
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from polyserve import Message
from polyserve.errors import ConfigurationError, EventError, PolyserveError
from polyserve.schema_registry import (
    Schema,
    SchemaError,
    SchemaRegistry,
    SchemaRegistryError,
    UnknownSchemaError,
    decode_message_indexes,
    encode,
    encode_message_indexes,
    split,
)
from polyserve_testkit.schema_registry import LocalRegistry, Registered, running_registry

if TYPE_CHECKING:
    from collections.abc import Iterator

ORDER_JSON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"id": {"type": "string"}, "total": {"type": "number", "minimum": 0}},
    "required": ["id", "total"],
}
MONEY_AVRO = {
    "type": "record", "name": "Money", "namespace": "shop",
    "fields": [{"name": "cents", "type": "long"}, {"name": "currency", "type": "string"}],
}  # fmt: skip
ORDER_AVRO = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "total", "type": "shop.Money"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}  # fmt: skip


def _avro(schema: dict[str, Any], value: dict[str, Any], named: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema, named_schemas=named), value)
    return out.getvalue()


def _field(name: str, number: int, kind: int, **extra: Any) -> descriptor_pb2.FieldDescriptorProto:
    return descriptor_pb2.FieldDescriptorProto(
        name=name, number=number, type=kind,  # type: ignore[arg-type]  # the enum's int
        label=extra.pop("label", descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL), **extra,
    )  # fmt: skip


F = descriptor_pb2.FieldDescriptorProto


def _proto_files() -> tuple[descriptor_pb2.FileDescriptorProto, descriptor_pb2.FileDescriptorProto]:
    """money.proto (a referenced file) and orders.proto: Order (with a nested Line), Refund."""
    money = descriptor_pb2.FileDescriptorProto(name="money.proto", package="shop", syntax="proto3")
    money.message_type.add(name="Money").field.extend(
        [_field("cents", 1, F.TYPE_INT64), _field("currency", 2, F.TYPE_STRING)]
    )
    orders = descriptor_pb2.FileDescriptorProto(
        name="orders.proto", package="shop", syntax="proto3",
        dependency=["money.proto", "google/protobuf/timestamp.proto"],
    )  # fmt: skip
    order = orders.message_type.add(name="Order")
    order.field.extend([
        _field("id", 1, F.TYPE_STRING),
        _field("total", 2, F.TYPE_MESSAGE, type_name=".shop.Money"),
        _field("placed", 3, F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"),
        _field("lines", 4, F.TYPE_MESSAGE, type_name=".shop.Order.Line", label=F.LABEL_REPEATED),
    ])  # fmt: skip
    order.nested_type.add(name="Line").field.extend(
        [_field("sku", 1, F.TYPE_STRING), _field("qty", 2, F.TYPE_INT32)]
    )
    orders.message_type.add(name="Refund").field.append(_field("order_id", 1, F.TYPE_STRING))
    return money, orders


def _proto_classes() -> dict[str, Any]:
    """The producer's classes, built from the same descriptors in a pool of their own."""
    from google.protobuf import timestamp_pb2

    pool = descriptor_pool.DescriptorPool()
    wkt = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(wkt)
    pool.Add(wkt)
    for proto in _proto_files():
        pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        for name in ("shop.Order", "shop.Order.Line", "shop.Refund")
    }


@pytest.fixture(scope="module")
def registry_server() -> Iterator[LocalRegistry]:
    for server in running_registry():
        money, orders = _proto_files()
        server.add(1, Registered("JSON", json.dumps(ORDER_JSON)))
        server.add(2, Registered("AVRO", json.dumps(MONEY_AVRO)), subject="money-value")
        server.add(3, Registered("AVRO", json.dumps(ORDER_AVRO),
                                 [{"name": "shop.Money", "subject": "money-value", "version": 1}]))  # fmt: skip
        # Served under a name of the registry's own: it is imported as money.proto.
        served = descriptor_pb2.FileDescriptorProto()
        served.CopyFrom(money)
        served.name = "default"
        server.add(4, Registered("PROTOBUF", "syntax = \"proto3\"; ...", descriptor=served.SerializeToString()),
                   subject="money-proto")  # fmt: skip
        server.add(5, Registered(
            "PROTOBUF", "syntax = \"proto3\"; ...", descriptor=orders.SerializeToString(),
            references=[{"name": "money.proto", "subject": "money-proto", "version": 1}],
        ))  # fmt: skip
        server.add(7, Registered("JSON", '{"type": "object", "required": ["cents"]}'),
                   subject="money-json")  # fmt: skip
        server.add(8, Registered(
            "JSON", '{"type": "object", "properties": {"total": {"$ref": "money.json"}}}',
            [{"name": "money.json", "subject": "money-json", "version": 1}],
        ))  # fmt: skip
        server.add(9, Registered("JSON", '{"properties": {"total": {"$ref": "nowhere.json"}}}'))
        yield server


@pytest.fixture
def registry(registry_server: LocalRegistry) -> SchemaRegistry:
    registry_server.requests.clear()
    return SchemaRegistry(registry_server.url)


# -- the wire format ---------------------------------------------------------------


def test_split_reads_the_header() -> None:
    assert split(b"\x00\x00\x00\x01\x02abc") == (258, b"abc")
    assert encode(258, b"abc") == b"\x00\x00\x00\x01\x02abc"


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\x00\x00\x01", "5-byte header; got 3 bytes"), (b"\x01\x00\x00\x00\x01{}", "not 1"),
     (b"", "got 0 bytes"), (b'{"id": "plain json"}', "not 123")],
)  # fmt: skip
def test_a_value_not_in_the_wire_format_is_a_schema_error(data: bytes, message: str) -> None:
    with pytest.raises(SchemaError, match=message) as caught:
        split(data)
    assert caught.value.code == "invalid_wire_format"
    assert isinstance(caught.value, EventError)


def test_message_indexes_are_zigzag_varints_with_a_short_form_for_the_first() -> None:
    assert encode_message_indexes([0]) == b"\x00"
    assert encode_message_indexes([1]) == b"\x02\x02"
    assert encode_message_indexes([0, 70]) == b"\x04\x00\x8c\x01"
    assert decode_message_indexes(b"\x04\x00\x8c\x01rest") == ([0, 70], b"rest")
    assert decode_message_indexes(b"\x00rest") == ([0], b"rest")
    assert encode(7, b"m", [2]) == b"\x00\x00\x00\x00\x07\x02\x04m"


@pytest.mark.parametrize("data", [b"", b"\x04\x00", b"\x02\x80", b"\x01\x02", b"\x7e\x02"])
def test_bad_message_indexes_are_schema_errors(data: bytes) -> None:
    with pytest.raises(SchemaError) as caught:
        decode_message_indexes(data)
    assert caught.value.code == "invalid_wire_format"


def test_encoding_refuses_what_the_format_cannot_carry() -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode(2**32, b"")
    with pytest.raises(ValueError, match="never negative"):
        encode_message_indexes([-1])


# -- JSON Schema -------------------------------------------------------------------


def test_json_values_are_parsed_and_validated(registry: SchemaRegistry) -> None:
    value = encode(1, b'{"id": "A-1", "total": 12.5}')
    assert registry.decode(value) == {"id": "A-1", "total": 12.5}
    assert registry.decode(Message(id="m", body=value)) == {"id": "A-1", "total": 12.5}


def test_a_json_value_that_breaks_its_schema_names_where_not_the_value(
    registry: SchemaRegistry,
) -> None:
    with pytest.raises(SchemaError) as caught:
        registry.decode(encode(1, b'{"id": "secret-card-4111", "total": -5}'))
    assert caught.value.code == "schema_mismatch"
    assert "total" in caught.value.detail
    assert "minimum" in caught.value.detail
    assert "-5" not in str(caught.value)
    assert "secret" not in str(caught.value)
    with pytest.raises(SchemaError, match="not valid JSON") as bad:
        registry.decode(encode(1, b"{not json"))
    assert bad.value.code == "undecodable_payload"


def test_json_schema_references_resolve_by_their_name(registry: SchemaRegistry) -> None:
    assert registry.decode(encode(8, b'{"total": {"cents": 5}}')) == {"total": {"cents": 5}}
    with pytest.raises(SchemaError) as caught:
        registry.decode(encode(8, b'{"total": {"euros": 5}}'))
    assert caught.value.code == "schema_mismatch"
    assert "total" in caught.value.detail
    with pytest.raises(SchemaError) as unresolved:
        registry.decode(encode(9, b'{"total": 1}'))
    assert unresolved.value.code == "invalid_schema"


def test_json_validation_can_be_turned_off(registry_server: LocalRegistry) -> None:
    lenient = SchemaRegistry(registry_server.url, validate_json=False)
    assert lenient.decode(encode(1, b'{"total": -5}')) == {"total": -5}


# -- Avro ----------------------------------------------------------------------------


def test_avro_values_are_read_with_the_writers_schema_and_its_references(
    registry: SchemaRegistry,
    registry_server: LocalRegistry,
) -> None:
    named: dict[str, Any] = {}
    fastavro.parse_schema(MONEY_AVRO, named_schemas=named)
    order: dict[str, Any] = {"id": "A-1", "total": {"cents": 1250, "currency": "EUR"}, "note": None}
    assert registry.decode(encode(3, _avro(ORDER_AVRO, order, named))) == order
    assert registry.decode(encode(2, _avro(MONEY_AVRO, order["total"], {}))) == order["total"]
    assert set(registry_server.requests) >= {"/schemas/ids/3", "/subjects/money-value/versions/1"}


ORDER_V2 = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "channel", "type": "string", "default": "web"},
    ],
}  # fmt: skip


def test_an_avro_reader_schema_resolves_each_value_to_it(registry: SchemaRegistry) -> None:
    named: dict[str, Any] = {}
    fastavro.parse_schema(MONEY_AVRO, named_schemas=named)
    order = {"id": "A-1", "total": {"cents": 1250, "currency": "EUR"}, "note": "gift"}
    value = encode(3, _avro(ORDER_AVRO, order, named))
    assert registry.decode(value, reader=ORDER_V2) == {
        "id": "A-1",
        "note": "gift",
        "channel": "web",
    }
    assert registry.decode(value) == order  # the writer's schema, as before
    incompatible = {**ORDER_V2, "fields": [{"name": "sku", "type": "string"}]}
    with pytest.raises(SchemaError) as caught:
        registry.decode(value, reader=incompatible)
    assert caught.value.code == "schema_mismatch"


@pytest.mark.parametrize("cut", [b"", b"\x02", b"\x02A-1\xc4\x13"])
def test_an_avro_value_cut_short_is_undecodable(registry: SchemaRegistry, cut: bytes) -> None:
    with pytest.raises(SchemaError) as caught:
        registry.decode(encode(3, cut))
    assert caught.value.code == "undecodable_payload"


def test_an_avro_value_with_bytes_left_over_is_undecodable(registry: SchemaRegistry) -> None:
    payload = _avro(MONEY_AVRO, {"cents": 1, "currency": "EUR"}, {}) + b"\x00\x00"
    with pytest.raises(SchemaError, match="2 bytes left over"):
        registry.decode(encode(2, payload))


def test_a_schema_that_does_not_parse_is_an_invalid_schema() -> None:
    registry = SchemaRegistry(schemas={9: Schema("AVRO", '{"type": "nonsense"}')})
    with pytest.raises(SchemaError) as caught:
        registry.decode(encode(9, b""))
    assert caught.value.code == "invalid_schema"


# -- Protobuf ------------------------------------------------------------------------


def test_protobuf_classes_are_built_from_the_registrys_descriptors(
    registry: SchemaRegistry,
) -> None:
    classes = _proto_classes()
    order = classes["shop.Order"](id="A-1")
    order.total.cents = 1250
    order.placed.seconds = 1_765_000_000
    order.lines.add(sku="pen", qty=3)
    decoded = registry.decode(encode(5, order.SerializeToString(), [0]))
    assert decoded.DESCRIPTOR.full_name == "shop.Order"
    assert (decoded.id, decoded.total.cents, decoded.placed.seconds) == ("A-1", 1250, 1_765_000_000)
    assert [(line.sku, line.qty) for line in decoded.lines] == [("pen", 3)]

    refund = registry.decode(
        encode(5, classes["shop.Refund"](order_id="A-1").SerializeToString(), [1])
    )
    assert (refund.DESCRIPTOR.full_name, refund.order_id) == ("shop.Refund", "A-1")
    line = registry.decode(
        encode(5, classes["shop.Order.Line"](sku="ink").SerializeToString(), [0, 0])
    )
    assert (line.DESCRIPTOR.full_name, line.sku) == ("shop.Order.Line", "ink")


def test_protobuf_decodes_into_a_class_of_the_callers(
    registry: SchemaRegistry, registry_server: LocalRegistry
) -> None:
    cls = _proto_classes()["shop.Refund"]
    decoded = registry.decode(encode(5, cls(order_id="B-2").SerializeToString(), [1]), into=cls)
    assert isinstance(decoded, cls)
    assert decoded.order_id == "B-2"
    assert "/schemas/ids/5?format=serialized" not in set(registry_server.requests)


@pytest.mark.parametrize(
    ("indexes", "payload"), [([7], b""), ([0, 5], b""), ([0], b"\x0a\xff"), ([1], b"\xff\xff")]
)
def test_protobuf_payloads_that_name_no_message_or_do_not_parse(
    registry: SchemaRegistry, indexes: list[int], payload: bytes
) -> None:
    with pytest.raises(SchemaError) as caught:
        registry.decode(encode(5, payload, indexes))
    assert caught.value.code == "undecodable_payload"


def test_a_registry_without_serialized_descriptors_asks_for_a_class(
    registry_server: LocalRegistry,
) -> None:
    registry = SchemaRegistry(registry_server.url, schemas={5: Schema("PROTOBUF", "...")})
    registry_server.fail_with = 501
    try:
        with pytest.raises(SchemaError, match="into=YourMessageClass") as caught:
            registry.decode(encode(5, b"", [0]))
    finally:
        registry_server.fail_with = None
    assert caught.value.code == "invalid_schema"


def test_a_preloaded_protobuf_schema_without_a_descriptor_needs_a_class() -> None:
    registry = SchemaRegistry(schemas={5: Schema("PROTOBUF", 'syntax = "proto3";')})
    with pytest.raises(SchemaError, match="into=YourMessageClass"):
        registry.decode(encode(5, b"", [0]))


# -- the registry --------------------------------------------------------------------


def test_each_schema_is_fetched_once(
    registry: SchemaRegistry, registry_server: LocalRegistry
) -> None:
    for total in range(5):
        registry.decode(encode(1, json.dumps({"id": "x", "total": total}).encode()))
    assert set(registry_server.requests) == {"/schemas/ids/1"}
    assert registry.schema(1).type == "JSON"


def test_threads_sharing_a_registry_decode_alike(registry_server: LocalRegistry) -> None:
    from concurrent.futures import ThreadPoolExecutor

    named: dict[str, Any] = {}
    fastavro.parse_schema(MONEY_AVRO, named_schemas=named)
    order = {"id": "T", "total": {"cents": 1, "currency": "EUR"}, "note": "n"}
    value = encode(3, _avro(ORDER_AVRO, order, named))
    shared = SchemaRegistry(registry_server.url)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: shared.decode(value), range(64)))
    assert results == [order] * 64


def test_an_unknown_id_is_remembered_for_a_while(
    registry: SchemaRegistry, registry_server: LocalRegistry
) -> None:
    for _ in range(3):
        with pytest.raises(UnknownSchemaError, match="no schema with id 404") as caught:
            registry.decode(encode(404, b"{}"))
    assert (caught.value.code, caught.value.schema_id) == ("unknown_schema", 404)
    assert isinstance(caught.value, SchemaError)
    assert registry_server.requests == ["/schemas/ids/404"]
    again = SchemaRegistry(registry_server.url, unknown_ttl=0)
    for _ in range(2):
        with pytest.raises(UnknownSchemaError):
            again.schema(404)
    assert registry_server.requests.count("/schemas/ids/404") == 3


def test_unknown_ids_remembered_are_bounded(
    registry: SchemaRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polyserve.schema_registry import _client

    monkeypatch.setattr(_client, "_MAX_UNKNOWN", 3)
    for schema_id in range(1000, 1010):
        with pytest.raises(UnknownSchemaError):
            registry.schema(schema_id)
    assert 1009 in registry._unknown
    assert len(registry._unknown) <= 3


def test_a_registry_with_no_url_has_only_its_preloaded_schemas() -> None:
    registry = SchemaRegistry(schemas={1: Schema("JSON", json.dumps(ORDER_JSON))})
    assert registry.decode(encode(1, b'{"id": "a", "total": 1}')) == {"id": "a", "total": 1}
    with pytest.raises(UnknownSchemaError):
        registry.decode(encode(2, b"{}"))


def test_credentials_are_sent_and_never_shown() -> None:
    basic = "Basic " + base64.b64encode(b"key:s3cret").decode()
    for server in running_registry(authorization=basic):
        server.add(1, Registered("JSON", "{}"))
        assert SchemaRegistry(server.url, username="key", password="s3cret").decode(
            encode(1, b"[1]")
        ) == [1]
        in_url = SchemaRegistry(server.url.replace("://", "://key:s3cret@"))
        assert in_url.decode(encode(1, b"[2]")) == [2]
        assert "s3cret" not in repr(in_url)
        assert in_url.url == server.url
        with pytest.raises(SchemaRegistryError) as caught:
            SchemaRegistry(server.url, token="t0ken").schema(1)
        assert caught.value.code == "registry_error"
        assert "t0ken" not in str(caught.value)
    for server in running_registry(authorization="Bearer t0ken"):
        server.add(1, Registered("JSON", "{}"))
        assert SchemaRegistry(server.url, token="t0ken").schema(1).type == "JSON"


def test_a_failing_or_absent_registry_is_a_registry_error(registry_server: LocalRegistry) -> None:
    registry_server.fail_with = 503
    try:
        with pytest.raises(SchemaRegistryError, match="answered 503") as caught:
            SchemaRegistry(registry_server.url).schema(1)
    finally:
        registry_server.fail_with = None
    assert (caught.value.code, caught.value.status) == ("registry_unavailable", 503)
    assert not isinstance(caught.value, EventError)
    for server in running_registry():
        url = server.url
    with pytest.raises(SchemaRegistryError, match="cannot be reached") as gone:
        SchemaRegistry(url, timeout=2).schema(1)
    assert gone.value.code == "registry_unavailable"
    assert isinstance(gone.value, PolyserveError)


def test_a_redirect_is_not_followed_with_the_credentials(registry_server: LocalRegistry) -> None:
    registry_server.requests.clear()
    registry_server.redirect_to = registry_server.url + "/moved"
    try:
        with pytest.raises(SchemaRegistryError, match="answered 302") as caught:
            SchemaRegistry(registry_server.url, token="t0ken").schema(1)
    finally:
        registry_server.redirect_to = None
    assert caught.value.code == "registry_error"
    assert registry_server.requests == ["/schemas/ids/1"]


def test_settings_come_from_the_environment() -> None:
    env = {"SCHEMA_REGISTRY_URL": "https://registry.example:8081/", "SCHEMA_REGISTRY_TOKEN": "t"}
    registry = SchemaRegistry.from_env(env, timeout=1.0)
    assert (registry.url, registry.timeout) == ("https://registry.example:8081", 1.0)
    assert registry._headers["Authorization"] == "Bearer t"
    basic = SchemaRegistry.from_env(
        {"SCHEMA_REGISTRY_URL": "http://r", "SCHEMA_REGISTRY_USERNAME": "k",
         "SCHEMA_REGISTRY_PASSWORD": "s", "SCHEMA_REGISTRY_TOKEN": ""}
    )  # fmt: skip
    assert basic._headers["Authorization"] == "Basic " + base64.b64encode(b"k:s").decode()
    with pytest.raises(ConfigurationError, match="SCHEMA_REGISTRY_URL is not set"):
        SchemaRegistry.from_env({})


@pytest.mark.parametrize("url", ["ftp://registry", "registry:8081", "http://"])
def test_a_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="http"):
        SchemaRegistry(url)


def test_a_token_and_a_password_are_one_too_many() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        SchemaRegistry("http://r", token="t", password="p")


def test_well_known_imports_resolve_in_a_fresh_process() -> None:
    # The default descriptor pool holds timestamp.proto only once timestamp_pb2 is
    # imported, which other tests here do: a fresh interpreter shows the real case.
    import subprocess
    import sys

    code = """
from google.protobuf import descriptor_pb2 as d
from polyserve.schema_registry import Schema, SchemaRegistry, encode
f = d.FileDescriptorProto(name="o.proto", package="p", syntax="proto3",
                          dependency=["google/protobuf/timestamp.proto"])
f.message_type.add(name="O").field.add(name="placed", number=3, type=11, label=1,
                                       type_name=".google.protobuf.Timestamp")
registry = SchemaRegistry(schemas={1: Schema("PROTOBUF", "", descriptor=f.SerializeToString())})
print(registry.decode(encode(1, b"\\x1a\\x02\\x08\\x05", [0])).placed.seconds)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "5"


def test_the_module_lists_its_exports_sorted_and_each_resolves() -> None:
    import polyserve.schema_registry as module

    assert module.__all__ == sorted(module.__all__)
    assert all(getattr(module, name) is not None for name in module.__all__)
    # The same class polyserve.errors gives: one error tree.
    import polyserve.errors

    assert module.UnknownSchemaError is polyserve.errors.UnknownSchemaError
