"""``TestClient`` shows what the app sent: ``client.sent(name)`` and ``client.outbound``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from polyserve import App, Message
from polyserve.errors import ConfigurationError
from polyserve.outbound import MemoryBackend, configure
from polyserve.testing import TestClient

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _no_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("POLYSERVE_OUTBOUND", raising=False)
    configure(None)
    yield
    configure(None)


def _shop() -> App:
    app = App("shop")
    orders = app.queue_out("orders")
    events = app.topic_out("order-events")
    thumbs = app.bucket("thumbs")

    @app.post("/orders", status=201)
    def create(body: dict[str, Any]) -> dict[str, Any]:
        orders.send(body, attributes={"kind": "created"}, key=str(body["customer"]))
        events.publish("created")
        thumbs.put(f"t/{body['id']}", b"jpeg", content_type="image/jpeg")
        return body

    return app


def test_sent_lists_messages_as_the_consumer_receives_them() -> None:
    client = TestClient(_shop())
    assert client.post("/orders", json={"id": 1, "customer": 7}).status_code == 201
    (message,) = client.sent("orders")
    assert isinstance(message, Message)
    assert message.json() == {"id": 1, "customer": 7}
    assert message.attributes == {"kind": "created", "content-type": "application/json"}
    assert message.group_key == "7"
    assert message.source == "orders"
    assert [m.text for m in client.sent("order-events", kind="topic")] == ["created"]
    assert client.sent("order-events") == []  # a queue of that name got nothing
    assert client.outbound is not None
    assert client.outbound.objects[("thumbs", "t/1")].content_type == "image/jpeg"


def test_each_client_sees_only_what_was_sent_since_it_was_made() -> None:
    app = _shop()
    first = TestClient(app)
    first.post("/orders", json={"id": 1, "customer": 7})
    second = TestClient(app)
    second.post("/orders", json={"id": 2, "customer": 8})
    assert [m.json()["id"] for m in second.sent("orders")] == [2]
    assert [m.json()["id"] for m in first.sent("orders")] == [1, 2]


def test_a_configured_memory_backend_is_used() -> None:
    mine = MemoryBackend()
    configure(mine)
    client = TestClient(_shop())
    assert client.outbound is mine


def test_another_backend_leaves_sent_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "aws")
    client = TestClient(_shop())
    assert client.outbound is None
    with pytest.raises(ConfigurationError, match="in-memory outbound backend"):
        client.sent("orders")
