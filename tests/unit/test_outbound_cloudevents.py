"""CloudEvents read back from the wire, and a message that carries one for a handler that takes one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from polyserve import App, CloudEvent, Message
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve.outbound import Queue, configure
from polyserve.outbound.cloudevents import (
    STRUCTURED_TYPE,
    from_binary,
    from_dict,
    from_message,
    from_structured,
    to_binary,
    to_dict,
    to_structured,
)
from polyserve.testing import TestClient

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
EVENTS = [
    CloudEvent(
        id="e1", source="/shop", type="order.created", subject="o-1", time=WHEN,
        datacontenttype="application/json", dataschema="https://example.com/o.json",
        data={"id": 1, "tags": ["a"]}, extensions={"tenant": "t1"},
    ),
    CloudEvent(id="e2", source="/shop", type="blob", data=b"\x00\xff"),
    CloudEvent(id="e3", source="/shop", type="blob", data=b"\x00\xff",
               datacontenttype="application/octet-stream"),
    CloudEvent(id="e4", source="/shop", type="note", data="caf\u00e9",
               datacontenttype="text/plain; charset=utf-8"),
    CloudEvent(id="e5", source="/shop", type="empty"),
]  # fmt: skip


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.id)
def test_both_modes_read_back_equal(event: CloudEvent) -> None:
    assert from_structured(to_structured(event)) == event
    assert from_dict(to_dict(event)) == event
    headers, body = to_binary(event)
    assert from_binary({**headers, "traceparent": "not part of the event"}, body) == event


def test_binary_mode_types_data_by_content_type() -> None:
    base = {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0"}
    assert from_binary({**base, "Content-Type": "application/json"}, b"[1]").data == [1]
    assert from_binary({**base, "content-type": "text/csv"}, b"a,b").data == "a,b"
    assert from_binary({**base, "content-type": "image/png"}, b"\x89P").data == b"\x89P"
    assert from_binary({"CE-ID": "1", **base}, b"x").data == b"x"  # names in any case
    # Without a content type, a JSON value is written as JSON and says so.
    headers, body = to_binary(CloudEvent(id="1", source="/s", type="t", data={"a": 1}))
    assert from_binary(headers, body).datacontenttype == "application/json"


@pytest.mark.parametrize(
    ("headers", "body", "match"),
    [
        ({"ce-id": "1", "ce-source": "/s", "ce-specversion": "1.0"}, b"", "no type"),
        (
            {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0",
             "content-type": "application/json"},
            b"{not json",
            "JSON",
        ),
        (
            {"ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0",
             "ce-time": "yesterday"},
            b"",
            "time",
        ),
    ],
)  # fmt: skip
def test_unreadable_binary_events_are_malformed(
    headers: dict[str, str], body: bytes, match: str
) -> None:
    with pytest.raises(MalformedEventError, match=match):
        from_binary(headers, body)


@pytest.mark.parametrize(
    ("body", "match"),
    [(b"[1]", "not a JSON object"), (b'{"id": "1", "source": "/s", "type": 3}', "no type"),
     (b'{"id":"1","source":"/s","type":"t","specversion":"1.0","data_base64":"%%"}', "base64")],
)  # fmt: skip
def test_unreadable_structured_events_are_malformed(body: bytes, match: str) -> None:
    with pytest.raises(MalformedEventError, match=match):
        from_structured(body)


def test_from_message_tells_the_modes_apart() -> None:
    event = EVENTS[0]
    structured = Message(
        id="m", body=to_structured(event), attributes={"content-type": STRUCTURED_TYPE}
    )
    headers, body = to_binary(event)
    binary = Message(id="m", body=body, attributes={**headers, "kind": "x"})
    plain = Message(id="m", body=b"{}", attributes={"content-type": "application/json"})
    assert from_message(structured) == event
    assert from_message(binary) == event
    assert from_message(plain) is None


def test_a_sent_cloudevent_reaches_a_handler_that_takes_one() -> None:
    app = App("shop")
    seen: list[Any] = []

    @app.queue("jobs")
    def on_event(event: CloudEvent) -> None:
        seen.append(event)

    client = TestClient(app)
    try:
        Queue("jobs").send(EVENTS[0])
        (sent,) = client.sent("jobs")
        assert sent.attributes["content-type"] == STRUCTURED_TYPE
        assert client.queue("jobs", sent.body, attributes=sent.attributes).is_complete_success
        headers, body = to_binary(EVENTS[1])  # binary mode, as Pub/Sub carries it
        assert client.queue("jobs", body, attributes=headers).is_complete_success
        assert seen == EVENTS[:2]
        # A message that carries no CloudEvent is still the wrong event type.
        result = client.queue("jobs", b"{}", attributes={"content-type": "application/json"})
        (failed,) = result.failed
        assert isinstance(failed.error, UnsupportedEventError)
    finally:
        configure(None)
