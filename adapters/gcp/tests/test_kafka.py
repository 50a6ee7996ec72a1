"""Kafka records delivered as CloudEvents become ``Message``s for ``@app.queue``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from adapters.gcp.tests.support import load, structured
from cloudevents.http import CloudEvent, from_http

import polyserve_gcp
from polyserve import App, Message
from polyserve.errors import MalformedEventError, UnsupportedEventError


def _run(event: CloudEvent, names: dict[str, str] | None = None) -> Message:
    app = App("kafka")
    seen: list[Message] = []

    @app.queue("orders")
    def on_order(message: Message) -> None:
        seen.append(message)

    polyserve_gcp.cloudevent(app, names=names)(event)
    (message,) = seen
    return message


def test_sample_becomes_a_message() -> None:
    message = _run(structured(load("kafka-record.json")), names={"orders.placed": "orders"})
    assert message.source == "orders"
    assert message.id == "orders.placed/partition:2/offset:90417"
    assert message.subject == "partition:2#90417"
    assert message.group_key == "customer-881"
    assert message.attributes == {"tenant": "acme", "contenttype": "application/json"}
    assert message.json() == {"order": "o-5521", "total_cents": 1250}
    assert message.enqueued_at == dt.datetime(2024, 5, 4, 12, 0, 1, 250000, tzinfo=dt.timezone.utc)
    assert message.attempt == 1


def _binary(value: bytes | None, **attrs: str) -> CloudEvent:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "dev.knative.kafka.event",
        "ce-source": "/apis/v1/namespaces/n/kafkasources/s#orders",
        "ce-id": "partition:0/offset:7",
        "ce-subject": "partition:0#7",
        "content-type": "application/octet-stream",
        **{f"ce-{k}": v for k, v in attrs.items()},
    }
    return from_http(headers, value)


def test_binary_value_is_kept_as_bytes_and_no_key_is_none() -> None:
    message = _run(_binary(b"\x00\xffraw"))
    assert message.body == b"\x00\xffraw"
    assert message.group_key is None
    assert message.source == "orders"
    assert message.attributes == {}


def test_tombstone_is_an_empty_body() -> None:
    event = CloudEvent(
        {"type": "dev.knative.kafka.event", "source": "/k#orders", "id": "i", "key": "k1"}, None
    )
    message = _run(event)
    assert message.body == b""
    assert message.group_key == "k1"


def test_names_map_the_full_source() -> None:
    event = _binary(b"x")
    message = _run(event, names={"/apis/v1/namespaces/n/kafkasources/s#orders": "orders"})
    assert message.body == b"x"


def test_text_data_is_utf8() -> None:
    event = CloudEvent({"type": "dev.knative.kafka.event", "source": "/k#orders"}, "héllo")
    assert _run(event).body == "héllo".encode()


@pytest.mark.parametrize(
    ("attrs", "data"),
    [
        ({"source": "/apis/v1/namespaces/n/kafkasources/s"}, b"x"),
        ({"source": "/k#orders", "kafkaheaderbad": b"\xff\xfe"}, b"x"),
        ({"source": "/k#orders", "key": ["not", "text"]}, b"x"),
    ],
)
def test_unreadable_record_is_malformed(attrs: dict[str, Any], data: Any) -> None:
    event = CloudEvent({"type": "dev.knative.kafka.event", **attrs}, data)
    with pytest.raises(MalformedEventError):
        _run(event)


def test_unregistered_topic_is_unsupported() -> None:
    event = CloudEvent({"type": "dev.knative.kafka.event", "source": "/k#payments"}, b"{}")
    with pytest.raises(UnsupportedEventError):
        _run(event)


def test_a_bad_record_does_not_stop_the_next() -> None:
    app = App("kafka")
    seen: list[bytes] = []

    @app.queue("orders")
    def on_order(message: Message) -> None:
        seen.append(message.body)

    handler = polyserve_gcp.cloudevent(app)
    attrs: dict[str, Any] = {"type": "dev.knative.kafka.event", "source": "/k#orders"}
    attrs["kafkaheaderx"] = b"\xff"
    bad = CloudEvent(attrs, b"1")
    with pytest.raises(MalformedEventError):
        handler(bad)
    del attrs["kafkaheaderx"]
    handler(CloudEvent(attrs, b"2"))
    assert seen == [b"2"]
