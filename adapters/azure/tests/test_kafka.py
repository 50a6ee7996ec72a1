"""The Kafka trigger: one record or a batch, each a ``Message``; bad records fail alone."""

from __future__ import annotations

import base64
from typing import Any

import azure.functions as func
import pytest
from adapters.azure.tests.support import (
    assert_worker_accepts,
    bindings,
    call,
    functions,
    load_native,
    trigger,
)

import polyserve_azure
from polyserve import App, Context, MalformedEventError, Message, Trigger, UnsupportedEventError
from polyserve_azure import BatchFailedError, _kafka

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class _Orders:
    def __init__(self, **options: Any) -> None:
        self.app = App("kafka")
        self.seen: list[Message] = []
        self.traces: list[str | None] = []
        self.app.register(Trigger.STREAM, "orders", self.handle, service="kafka", **options)

    def handle(self, msg: Message, ctx: Context) -> None:
        if msg.body == b"boom":
            raise ValueError("cannot handle")
        self.seen.append(msg)
        self.traces.append(ctx.trace_id)


def _record(
    value: bytes | None, offset: int, *, key: str | None = "k", headers: list[Any] | None = None
) -> func.KafkaEvent:
    return func.KafkaEvent(
        body=value,  # type: ignore[arg-type]
        key=key,
        offset=offset,
        partition=1,
        topic="orders",
        timestamp="2024-06-03T09:41:07.123Z",
        headers=headers or [],
    )


def test_the_generated_function_is_a_batch_kafka_trigger_the_worker_accepts() -> None:
    fn = functions(polyserve_azure.function_app(_Orders(consumer_group="billing").app))[
        "kafka_orders"
    ]
    assert_worker_accepts(fn)
    binding = trigger(fn)
    assert binding["type"] == "kafkaTrigger"
    assert binding["topic"] == "orders"
    assert binding["brokerList"] == "%KafkaBrokerList%"
    assert binding["consumerGroup"] == "billing"
    assert binding["cardinality"].lower() == "many"
    assert binding["dataType"].lower() == "binary"
    assert len(bindings(fn)) == 1


def test_a_single_record_function() -> None:
    orders = _Orders(batch=False, connection="Brokers")
    fn = functions(polyserve_azure.function_app(orders.app))["kafka_orders"]
    assert_worker_accepts(fn)
    assert trigger(fn)["cardinality"].lower() == "one"
    assert trigger(fn)["brokerList"] == "%Brokers%"
    call(fn, load_native("kafka-single.json"))
    (msg,) = orders.seen
    assert msg.id == "orders-2@1051"
    assert msg.group_key == "customer-8"
    assert msg.source == "orders"
    assert orders.traces == [TRACE]


def test_a_batch_from_the_worker() -> None:
    orders = _Orders()
    fn = functions(polyserve_azure.function_app(orders.app, names={"telemetry": "orders"}))[
        "kafka_telemetry"
    ]
    call(fn, load_native("kafka-batch.json"))
    assert [m.id for m in orders.seen] == ["telemetry-0@77", "telemetry-0@78"]
    assert [m.group_key for m in orders.seen] == [None, "device-4"]
    assert orders.seen[1].body == b"\x00\x01avro\xff"
    assert orders.seen[1].attributes == {"schema": "hello"}


@pytest.mark.parametrize(
    "bad",
    [
        _record(None, 11),
        _record(b"x", 11, headers=[{"Key": "h", "Value": _b64(b"\xff\xfe")}]),
        _record(b"x", 11, headers=[{"Key": "h", "Value": "not base64!"}]),
        _record(b"x", 11, headers=[{"Value": _b64(b"v")}]),
    ],
    ids=["null-value", "non-utf8-header", "bad-base64-header", "header-without-key"],
)
def test_a_bad_record_fails_alone(bad: func.KafkaEvent) -> None:
    orders = _Orders()
    fn = functions(polyserve_azure.function_app(orders.app))["kafka_orders"]
    with pytest.raises(BatchFailedError) as caught:
        call(fn, [_record(b"a", 10), bad, _record(b"c", 12, key=None)])
    assert [m.id for m in orders.seen] == ["orders-1@10", "orders-1@12"]
    assert orders.seen[1].group_key is None
    result = caught.value.result
    assert result.succeeded == ("orders-1@10", "orders-1@12")
    assert [f.item_id for f in result.failed] == ["orders-1@11"]
    assert isinstance(caught.value.__cause__, MalformedEventError)


def test_a_failing_handler_fails_its_record_and_ordered_stops_there() -> None:
    records = [_record(b"a", 1), _record(b"boom", 2), _record(b"c", 3)]
    orders = _Orders()
    fn = functions(polyserve_azure.function_app(orders.app))["kafka_orders"]
    with pytest.raises(BatchFailedError) as caught:
        call(fn, records)
    assert [f.item_id for f in caught.value.result.failed] == ["orders-1@2"]
    ordered = _Orders(ordered=True)
    fn = functions(polyserve_azure.function_app(ordered.app))["kafka_orders"]
    with pytest.raises(BatchFailedError) as caught:
        call(fn, records)
    assert [m.id for m in ordered.seen] == ["orders-1@1"]
    assert [f.item_id for f in caught.value.result.failed] == ["orders-1@2", "orders-1@3"]


def test_each_record_continues_its_producer_trace() -> None:
    other = "0af7651916cd43dd8448eb211c80319c"
    orders = _Orders()
    fn = functions(polyserve_azure.function_app(orders.app))["kafka_orders"]
    parent = _b64(f"00-{TRACE}-00f067aa0ba902b7-01".encode())
    diagnostic = _b64(f"00-{other}-00f067aa0ba902b7-01".encode())
    call(
        fn,
        [
            _record(b"a", 1, headers=[{"Key": "traceparent", "Value": parent}]),
            _record(b"b", 2, headers=[{"Key": "Diagnostic-Id", "Value": diagnostic}]),
            _record(b"c", 3),
        ],
    )
    assert orders.traces == [TRACE, other, None]


def test_something_that_is_not_a_kafka_record_is_unsupported() -> None:
    fn = functions(polyserve_azure.function_app(_Orders().app))["kafka_orders"]
    with pytest.raises(UnsupportedEventError):
        call(fn, object())


def test_records_without_a_position_are_reported_by_index() -> None:
    event = func.KafkaEvent(body=b"x")
    with pytest.raises(MalformedEventError):
        _kafka.read(event, 0, source="orders")
    assert _kafka.failure_id(event, 3) == "#3"


def test_headers_arrive_as_json_text_too() -> None:
    text = '[{"Key": "a", "Value": "aGVsbG8="}, {"Key": "b", "Value": null}]'
    assert _kafka.headers(text) == {"a": "hello", "b": ""}
    with pytest.raises(MalformedEventError):
        _kafka.headers("{not json")
    with pytest.raises(MalformedEventError):
        _kafka.headers({"a": "b"})
