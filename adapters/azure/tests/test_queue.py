"""Storage Queue and Service Bus (queue and topic) triggers: one message per invocation."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests.support import (
    call,
    functions,
    http_request,
    load_native,
    queue_message,
    service_bus_message,
)
from azure.functions import queue as azure_queue
from azure.functions.servicebus import ServiceBusMessage
from pydantic import BaseModel

import polyserve_azure
from polyserve import (
    App,
    Context,
    EventError,
    MalformedEventError,
    Message,
    Trigger,
    UnsupportedEventError,
)

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


def worker_message(**fields: Any) -> Any:
    """``azure.functions.queue.QueueMessage``, whose constructor is untyped."""
    cls: Any = azure_queue.QueueMessage
    return cls(**fields)


class Order(BaseModel):
    order_id: int


def test_a_storage_queue_message(fns: dict[str, Any], recorder: Recorder) -> None:
    native = load_native("queue-storage.json")
    assert call(fns["queue_orders"], native) is None
    msg = recorder.last
    assert msg == Message(
        id="6d1f2c3a-5e7b-4a90-8b21-0c3d4e5f6a7b",
        body=b'{"order_id": 1017, "sku": "KB-200"}',
        attributes={},
        attempt=3,
        enqueued_at=dt.datetime(2024, 6, 3, 9, 41, 7, tzinfo=UTC),
        source="orders",
    )
    assert msg.raw is native


def test_a_naive_insertion_time_is_utc_and_a_missing_count_is_the_first(
    fns: dict[str, Any], recorder: Recorder
) -> None:
    native = worker_message(id="m-1", body=b"x", insertion_time=dt.datetime(2024, 1, 2, 3, 4, 5))
    call(fns["queue_orders"], native)
    assert recorder.last.enqueued_at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert recorder.last.attempt == 1

    call(fns["queue_orders"], func.QueueMessage(id="m-2", body="text body"))
    assert (recorder.last.body, recorder.last.enqueued_at) == (b"text body", None)


@pytest.mark.parametrize(
    "native",
    [
        worker_message(id=None, body=b"x"),
        worker_message(id="m", body=b"x", dequeue_count="two"),
        worker_message(id="m", body=b"x", insertion_time="yesterday"),
        worker_message(id="m", body=b"x", insertion_time=12),
    ],
    ids=["no-id", "text-count", "bad-time", "int-time"],
)
def test_a_malformed_queue_message_fails_with_a_typed_error(
    fns: dict[str, Any], recorder: Recorder, native: Any
) -> None:
    with pytest.raises(MalformedEventError):
        call(fns["queue_orders"], native)
    assert recorder.seen == []


def test_something_that_is_not_a_queue_message_is_unsupported(fns: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedEventError):
        call(fns["queue_orders"], http_request("GET", "https://h/api/x"))


def test_a_failing_handler_raises_so_the_host_retries() -> None:
    app = App("failing")

    class Boom(Exception):
        pass

    @app.queue("orders")
    def on_order(msg: Message) -> str:
        if msg.attempt < 5:
            raise Boom(msg.id)
        return "done"

    fn = functions(polyserve_azure.function_app(app))["queue_orders"]
    with pytest.raises(Boom):
        call(fn, queue_message(b"x", dequeue_count=1))
    assert call(fn, queue_message(b"x", dequeue_count=5)) is None


def test_a_payload_that_does_not_validate_is_an_event_error() -> None:
    app = App("typed")
    seen: list[Order] = []

    @app.queue("orders")
    def on_order(order: Order) -> None:
        seen.append(order)

    fn = functions(polyserve_azure.function_app(app))["queue_orders"]
    call(fn, queue_message(b'{"order_id": 7}'))
    assert seen == [Order(order_id=7)]
    for body in (b'{"order_id": "seven"}', b"{not json"):
        with pytest.raises(EventError):
            call(fn, queue_message(body))


def test_a_service_bus_queue_message(fns: dict[str, Any], recorder: Recorder) -> None:
    native = load_native("servicebus-queue.json")
    call(fns["servicebus_jobs"], native)
    assert recorder.last == Message(
        id="c2a7e9d0b6f14e1f9a3b5c7d9e1f2a3b",
        body=b"resize /photos/42.jpg",
        attributes={"priority": "5", "tenant": "acme", "urgent": "true"},
        attempt=2,
        enqueued_at=dt.datetime(2024, 6, 3, 9, 41, 7, 512345, tzinfo=UTC),
        source="jobs",
        group_key="customer-88",
        subject="photo.resize",
    )
    assert recorder.last.raw is native


def test_a_service_bus_topic_message(fns: dict[str, Any], recorder: Recorder) -> None:
    call(fns["topic_events_billing"], load_native("servicebus-topic.json"))
    msg = recorder.last
    assert (msg.source, msg.subject, msg.attempt) == ("events", "invoice.created", 1)
    assert msg.attributes == {"region": "westeurope"}
    assert msg.json() == {"invoice": "INV-2024-0042", "total": 99.5}


def test_topic_and_queue_handlers_are_told_apart() -> None:
    app = App("both")
    seen: list[tuple[str, str]] = []
    app.register(
        Trigger.QUEUE, "events", lambda msg: seen.append(("queue", msg.id)), service="servicebus"
    )
    app.register(
        Trigger.TOPIC, "events", lambda msg: seen.append(("topic", msg.id)), subscription="s"
    )
    fns = functions(polyserve_azure.function_app(app))
    call(fns["servicebus_events"], service_bus_message(b"", message_id="q1"))
    call(fns["topic_events_s"], service_bus_message(b"", message_id="t1"))
    assert seen == [("queue", "q1"), ("topic", "t1")]


@pytest.mark.parametrize(
    ("properties", "attributes"),
    [
        ({"n": 1, "f": 0.5, "ok": False, "none": None}, {"n": "1", "f": "0.5", "ok": "false"}),
        ({"nested": {"b": 2, "a": [1]}}, {"nested": '{"a":[1],"b":2}'}),
        ({}, {}),
    ],
)
def test_application_properties_become_string_attributes(
    fns: dict[str, Any], recorder: Recorder, properties: dict[str, Any], attributes: dict[str, str]
) -> None:
    call(fns["servicebus_jobs"], service_bus_message(b"x", properties=properties))
    assert recorder.last.attributes == attributes


def test_the_older_user_properties_and_label_are_read_when_the_newer_are_empty(
    fns: dict[str, Any], recorder: Recorder
) -> None:
    native = ServiceBusMessage(
        body=b"x",
        message_id="old-1",
        application_properties={},
        user_properties={"legacy": "yes"},
        label="old.subject",
        delivery_count=4,
    )
    call(fns["servicebus_jobs"], native)
    assert recorder.last.attributes == {"legacy": "yes"}
    assert (recorder.last.subject, recorder.last.attempt) == ("old.subject", 4)


@pytest.mark.parametrize(
    "native",
    [
        # Mistyped on purpose (hence the type ignores): each must fail with a typed error.
        ServiceBusMessage(body=b"x", message_id="", application_properties={}, user_properties={}),
        ServiceBusMessage(
            body=b"x",
            message_id="m",
            application_properties={},
            user_properties={},
            delivery_count=True,
        ),
        ServiceBusMessage(
            body=b"x",
            message_id="m",
            application_properties=["a"],  # type: ignore[arg-type]
            user_properties={},
        ),
        ServiceBusMessage(
            body=b"x",
            message_id="m",
            application_properties={},
            user_properties={},
            session_id=5,  # type: ignore[arg-type]
        ),
    ],
    ids=["no-id", "bool-count", "list-properties", "int-session"],
)
def test_a_malformed_service_bus_message_fails_with_a_typed_error(
    fns: dict[str, Any], native: ServiceBusMessage
) -> None:
    with pytest.raises(MalformedEventError):
        call(fns["servicebus_jobs"], native)


def test_names_give_the_logical_source(recorder: Recorder) -> None:
    fns = functions(polyserve_azure.function_app(recorder.app, names={"orders-prod": "orders"}))
    call(fns["queue_orders-prod"], queue_message(b"x"))
    assert recorder.last.source == "orders"


def test_an_envelope_is_unwrapped_and_its_trace_continued() -> None:
    from polyserve_azure._envelope import wrap

    app = App("envelopes")
    seen: list[tuple[bytes, dict[str, str], str | None]] = []

    @app.queue("orders")
    def on_order(message: Message, context: Context) -> None:
        seen.append((message.body, dict(message.attributes), context.trace_id))

    fn = functions(polyserve_azure.function_app(app))["queue_orders"]
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    call(fn, queue_message(wrap(b"\xff\x00", {"kind": "bin", "traceparent": parent})))
    call(fn, queue_message(wrap(b"text", {})))
    # Bodies that only look like an envelope are delivered as they are.
    for body in (b'{"polyserve":1,', b'{"polyserve":1,"attributes":{"a":1},"body":"x"}'):
        call(fn, queue_message(body))
    assert seen[0] == (
        b"\xff\x00",
        {"kind": "bin", "traceparent": parent},
        "4bf92f3577b34da6a3ce929d0e0e4736",
    )
    assert seen[1][:2] == (b"text", {})
    assert [s[:2] for s in seen[2:]] == [
        (b'{"polyserve":1,', {}),
        (b'{"polyserve":1,"attributes":{"a":1},"body":"x"}', {}),
    ]
