"""Kafka records in the schema registry wire format, decoded in handlers, through Lambda.

A record whose schema id the registry does not know, or that is not in the wire
format, fails alone: with an exception handler that sets ``SchemaError`` aside, every
other record of the batch is handled; without one, the Kafka event source's ordered
semantics apply (the records before it are handled, the batch stops and raises).
"""

from __future__ import annotations

import base64
import io
import json
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Context, Message, SetAside
from polyserve.schema_registry import SchemaError, SchemaRegistry, UnknownSchemaError, encode
from polyserve_testkit.schema_registry import LocalRegistry, Registered, running_registry

if TYPE_CHECKING:
    from collections.abc import Iterator

ORDER = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "string"}, {"name": "cents", "type": "long"}],
}  # fmt: skip


@pytest.fixture(scope="module")
def registry_server() -> Iterator[LocalRegistry]:
    for server in running_registry():
        server.add(11, Registered("AVRO", json.dumps(ORDER)))
        server.add(12, Registered("JSON", '{"type": "object", "required": ["id"]}'))
        yield server


def _avro(order: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(ORDER), order)
    return encode(11, out.getvalue())


def _event(values: list[bytes]) -> dict[str, Any]:
    raw = load("kafka-msk.json")
    template = raw["records"]["orders-0"][0]
    records = [
        {**template, "offset": offset, "value": base64.b64encode(value).decode(), "headers": []}
        for offset, value in enumerate(values)
    ]
    raw["records"] = {"orders-0": records}
    return raw


VALUES = [
    _avro({"id": "A-1", "cents": 100}),
    encode(99, b"\x02x"),  # a schema id the registry does not know
    encode(12, b'{"id": "A-2"}'),
    b'{"id": "plain JSON, not the wire format"}',
    encode(12, b'{"no": "id"}'),  # breaks its JSON Schema
    _avro({"id": "A-3", "cents": 300}),
]


def _app(registry: SchemaRegistry, *, set_aside: bool) -> tuple[App, list[Any], list[str]]:
    app = App("kafka")
    decoded: list[Any] = []
    refused: list[str] = []

    @app.stream("orders")
    def on_order(msg: Message) -> None:
        decoded.append(registry.decode(msg))

    if set_aside:

        @app.exception_handler(SchemaError)
        def skip(exc: SchemaError, event: Message, ctx: Context) -> SetAside:
            refused.append(f"{event.id} {exc.code}")
            return SetAside(exc.code)

    return app, decoded, refused


def test_bad_records_are_set_aside_and_every_other_record_is_handled(
    registry_server: LocalRegistry, lambda_context: FakeLambdaContext
) -> None:
    app, decoded, refused = _app(SchemaRegistry(registry_server.url), set_aside=True)
    assert polyserve_aws.handler(app)(_event(VALUES), lambda_context) is None
    assert decoded == [{"id": "A-1", "cents": 100}, {"id": "A-2"}, {"id": "A-3", "cents": 300}]
    assert refused == [
        "orders-0@1 unknown_schema", "orders-0@3 invalid_wire_format", "orders-0@4 schema_mismatch",
    ]  # fmt: skip


def test_without_a_handler_an_unknown_schema_stops_the_ordered_batch(
    registry_server: LocalRegistry, lambda_context: FakeLambdaContext
) -> None:
    app, decoded, _ = _app(SchemaRegistry(registry_server.url), set_aside=False)
    with pytest.raises(UnknownSchemaError, match="id 99"):
        polyserve_aws.handler(app)(_event(VALUES), lambda_context)
    assert decoded == [{"id": "A-1", "cents": 100}]  # the record before it was handled


def test_an_unreachable_registry_fails_the_batch_for_redelivery(
    lambda_context: FakeLambdaContext,
) -> None:
    from polyserve.schema_registry import SchemaRegistryError

    for server in running_registry():
        url = server.url
    app, decoded, refused = _app(SchemaRegistry(url, timeout=2), set_aside=True)
    with pytest.raises(SchemaRegistryError, match="cannot be reached"):
        polyserve_aws.handler(app)(_event(VALUES), lambda_context)
    assert (decoded, refused) == ([], [])  # not set aside: the registry's fault, not the record's


def test_preloaded_schemas_decode_across_partitions_until_an_unknown_id(
    lambda_context: FakeLambdaContext,
) -> None:
    from polyserve.schema_registry import Schema

    order = {"type": "record", "name": "Order", "fields": [{"name": "total", "type": "double"}]}
    registry = SchemaRegistry(schemas={11: Schema("AVRO", json.dumps(order))})

    def avro(total: float, schema_id: int = 11) -> str:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, fastavro.parse_schema(order), {"total": total})
        return base64.b64encode(encode(schema_id, out.getvalue())).decode()

    raw = load("kafka-msk.json")
    first, second = raw["records"]["orders-0"]
    first["value"], second["value"] = avro(12.5), avro(3.0)
    raw["records"]["orders-3"][0]["value"] = avro(1.0, schema_id=12)  # not in the registry
    app = App("kafka")
    totals: list[float] = []

    @app.stream("orders")
    def handle(event: Message) -> None:
        totals.append(registry.decode(event)["total"])

    with pytest.raises(UnknownSchemaError, match="12"):
        polyserve_aws.handler(app)(raw, lambda_context)
    assert totals == [12.5, 3.0]
