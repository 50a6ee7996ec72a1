"""Schema registry values on the Azure Functions Kafka trigger: an unknown schema id
fails its record alone, and the rest of the (unordered) batch is handled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests.support import call, functions

import polyserve_azure
from polyserve import App, Message
from polyserve.schema_registry import SchemaRegistry, UnknownSchemaError, encode
from polyserve_azure import BatchFailedError
from polyserve_testkit.schema_registry import LocalRegistry, Registered, running_registry

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def registry_server() -> Iterator[LocalRegistry]:
    for server in running_registry():
        server.add(21, Registered("JSON", '{"type": "object", "required": ["id"]}'))
        yield server


def _record(value: bytes, offset: int) -> func.KafkaEvent:
    return func.KafkaEvent(
        body=value, key="k", offset=offset, partition=0, topic="orders",
        timestamp="2024-06-03T09:41:07.123Z", headers=[],
    )  # fmt: skip


def test_an_unknown_schema_id_fails_its_record_alone(registry_server: LocalRegistry) -> None:
    registry = SchemaRegistry(registry_server.url)
    app = App("kafka")
    decoded: list[Any] = []

    @app.stream("orders", service="kafka")
    def on_order(msg: Message) -> None:
        decoded.append(registry.decode(msg))

    fn = functions(polyserve_azure.function_app(app))["kafka_orders"]
    records = [
        _record(encode(21, b'{"id": "A-1"}'), 1),
        _record(encode(4040, b'{"id": "A-2"}'), 2),
        _record(encode(21, b'{"id": "A-3"}'), 3),
    ]
    with pytest.raises(BatchFailedError) as caught:
        call(fn, records)
    assert decoded == [{"id": "A-1"}, {"id": "A-3"}]
    result = caught.value.result
    assert result.succeeded == ("orders-0@1", "orders-0@3")
    assert [f.item_id for f in result.failed] == ["orders-0@2"]
    assert isinstance(result.failed[0].error, UnknownSchemaError)
