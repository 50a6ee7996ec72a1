"""Schema registry values in Kafka CloudEvents (binary content mode) decode in handlers;
a record naming an unknown schema fails alone, as every record is its own event."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from cloudevents.http import CloudEvent, from_http

import polyserve_gcp
from polyserve import App, Message
from polyserve.schema_registry import SchemaRegistry, UnknownSchemaError, encode
from polyserve_testkit.schema_registry import LocalRegistry, Registered, running_registry

if TYPE_CHECKING:
    from collections.abc import Iterator

READING = {"type": "record", "name": "Reading", "fields": [{"name": "celsius", "type": "float"}]}


@pytest.fixture(scope="module")
def registry_server() -> Iterator[LocalRegistry]:
    for server in running_registry():
        server.add(31, Registered("AVRO", json.dumps(READING)))
        yield server


def _event(value: bytes, offset: int) -> CloudEvent:
    headers = {
        "ce-specversion": "1.0", "ce-type": "dev.knative.kafka.event",
        "ce-source": "/apis/v1/namespaces/n/kafkasources/s#readings",
        "ce-id": f"partition:0/offset:{offset}", "content-type": "application/octet-stream",
    }  # fmt: skip
    return from_http(headers, value)


def test_values_decode_and_an_unknown_schema_fails_its_record(
    registry_server: LocalRegistry,
) -> None:
    registry = SchemaRegistry(registry_server.url)
    app = App("kafka")
    decoded: list[Any] = []

    @app.queue("readings")
    def on_reading(msg: Message) -> None:
        decoded.append(registry.decode(msg))

    handler = polyserve_gcp.cloudevent(app)
    value = io.BytesIO()
    fastavro.schemaless_writer(value, fastavro.parse_schema(READING), {"celsius": 21.5})
    handler(_event(encode(31, value.getvalue()), 1))
    with pytest.raises(UnknownSchemaError):
        handler(_event(encode(32, value.getvalue()), 2))
    handler(_event(encode(31, value.getvalue()), 3))
    assert decoded == [{"celsius": 21.5}, {"celsius": 21.5}]
