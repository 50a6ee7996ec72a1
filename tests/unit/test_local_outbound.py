"""Local runs: what one handler sends is delivered to the app's own consumer of that name."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import App, Context, Message
from polyserve.local import LocalServer, local_outbound
from polyserve.outbound import MemoryBackend, configure

if TYPE_CHECKING:
    from collections.abc import Iterator

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryBackend]:
    monkeypatch.delenv("POLYSERVE_OUTBOUND", raising=False)
    memory = MemoryBackend()
    configure(memory)
    yield memory
    configure(None)


def _shop(seen: list[Any]) -> App:
    app = App("shop")
    orders = app.queue_out("orders")
    events = app.topic_out("order-events")

    @app.post("/orders", status=201)
    def create(body: dict[str, Any], context: Context) -> dict[str, Any]:
        orders.send(body, attributes={"kind": "created"}, key="customer-7", trace=context.trace)
        events.publish(b"\xff\x00raw")
        return body

    def poisoned(message: Message, exc: Exception, ctx: object) -> None:
        seen.append(("poison", message, None))

    @app.queue("orders", max_attempts=2, on_poison=poisoned)
    def consume(message: Message, context: Context) -> None:
        seen.append(("queue", message, context.trace_id))
        if message.json().get("fail"):
            raise ValueError("boom")

    @app.topic("order-events")
    def on_event(message: Message) -> None:
        seen.append(("topic", message.body))

    return app


async def _post(server: LocalServer, path: str, body: dict[str, Any]) -> int:
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"traceparent", TRACEPARENT.encode())]
    scope = {
        "type": "http", "method": "POST", "path": path, "query_string": b"", "headers": headers,
        "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000), "root_path": "",
    }  # fmt: skip
    await server(scope, receive, send)
    status: int = sent[0]["status"]
    return status


def test_a_send_is_delivered_to_the_consumer_of_the_same_name(backend: MemoryBackend) -> None:
    seen: list[Any] = []
    server = LocalServer(_shop(seen), clock=Clock(), outbound=backend)

    async def main() -> None:
        assert await _post(server, "/orders", {"id": 1}) == 201
        assert await server.deliver_due() == 2

    asyncio.run(main())
    (kind, message, trace_id), topic = seen
    assert kind == "queue"
    assert message.json() == {"id": 1}
    assert message.source == "orders"
    assert message.group_key == "customer-7"
    assert message.attributes == {
        "kind": "created",
        "content-type": "application/json",
        "traceparent": TRACEPARENT,
    }
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # continues the request's trace
    assert topic == ("topic", b"\xff\x00raw")  # bytes that are not UTF-8 arrive intact
    assert len(backend.messages("orders")) == 1  # still recorded for tests


def test_failed_deliveries_are_retried_then_set_aside(backend: MemoryBackend) -> None:
    seen: list[Any] = []
    clock = Clock()
    server = LocalServer(_shop(seen), clock=clock, outbound=backend)

    async def main() -> None:
        await _post(server, "/orders", {"fail": True})
        await server.deliver_due()  # attempt 1 fails: backoff 1 s
        assert await server.deliver_due() == 0
        clock.now += 1
        await server.deliver_due()  # attempt 2 = max_attempts: set aside

    asyncio.run(main())
    attempts = [(s[0], s[1].attempt) for s in seen if s[0] != "topic"]
    assert attempts == [("queue", 1), ("queue", 2), ("poison", 2)]
    states = [p.state for p in server.store.listing()]
    assert states == ["set_aside"]


def test_delay_and_unregistered_names(backend: MemoryBackend) -> None:
    seen: list[Any] = []
    clock = Clock()
    app = _shop(seen)
    server = LocalServer(app, clock=clock, outbound=backend)

    async def main() -> None:
        app.queue_out("orders").send({"id": 2}, delay=30)
        app.queue_out("nobody-consumes").send("kept")
        assert await server.deliver_due() == 0
        clock.now += 30
        assert await server.deliver_due() == 1

    asyncio.run(main())
    assert [s[1].json() for s in seen] == [{"id": 2}]
    assert backend.messages("nobody-consumes")[0].body == b"kept"


def test_the_running_server_delivers_without_being_asked(backend: MemoryBackend) -> None:
    seen: list[Any] = []
    server = LocalServer(_shop(seen), outbound=backend)

    async def main() -> None:
        startup = [{"type": "lifespan.startup"}]
        stop = asyncio.Event()
        answers: list[str] = []

        async def receive() -> dict[str, Any]:
            if startup:
                return startup.pop()
            await stop.wait()
            return {"type": "lifespan.shutdown"}

        async def send(message: dict[str, Any]) -> None:
            answers.append(message["type"])

        lifespan = asyncio.create_task(server({"type": "lifespan"}, receive, send))
        while not answers:
            await asyncio.sleep(0.01)
        await _post(server, "/orders", {"id": 3})
        for _ in range(200):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await lifespan

    asyncio.run(main())
    assert sorted(s[0] for s in seen) == ["queue", "topic"]
    # After shutdown the backend no longer feeds the server (whose store is closed:
    # a listener left behind would raise here).
    assert server.outbound is backend
    backend.send("queue", "orders", backend.messages("orders"))


def test_serve_configures_a_memory_backend_when_none_is_chosen(
    monkeypatch: pytest.MonkeyPatch, backend: MemoryBackend
) -> None:
    assert local_outbound() is backend  # the configured one
    configure(None)
    made = local_outbound()
    assert isinstance(made, MemoryBackend)
    assert local_outbound() is made  # configured, so found again
    configure(None)
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "aws")
    assert local_outbound() is None  # sends go to the chosen cloud
