"""Azure outbound without an emulator: Event Grid and Service Bus.

Event Grid publishing is an HTTP POST: it runs against a loopback HTTP server that
checks the wire format (path, api-version, headers, the JSON array), and each event
received is then handed to the Event Grid function ``polyserve_azure.function_app``
generated, decoded by the worker's own converter, as Event Grid would deliver it.

Service Bus speaks AMQP, and no Service Bus server runs offline: these tests build the
messages and batches with azure-servicebus's own ``ServiceBusMessage`` and
``ServiceBusMessageBatch`` (which measure each message as AMQP encodes it), and replace
only the sender's network call. The consumer side is the project's Service Bus trigger,
fed the message the host would build from what was sent.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from adapters.azure.tests.support import as_json, call, decode, functions, service_bus_message

import polyserve_azure
from polyserve import App, CloudEvent, Context
from polyserve.errors import ConfigurationError
from polyserve.events.queue import Message  # noqa: TC001 (the handler's hints are read at run time)
from polyserve.outbound import (
    BatchPublishError,
    MessageTooLargeError,
    Queue,
    Topic,
    TransientPublishError,
)
from polyserve.tracing import TraceContext
from polyserve_azure import _servicebus_out
from polyserve_azure.outbound import AzureBackend

if TYPE_CHECKING:
    from collections.abc import Iterator

TRACE = TraceContext(
    "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True, tracestate="shop=1"
)
KEY = "test-topic-key"


@dataclass(frozen=True)
class Order:
    number: int
    customer: str


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class GridServer:
    """A loopback Event Grid topic: records each POST and answers with the next planned status."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                owner.requests.append(
                    Received(
                        parts.path,
                        parse_qs(parts.query),
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                status = owner.statuses.pop(0) if owner.statuses else 200
                answer = b"" if status == 200 else b'{"error":{"message":"planned failure"}}'
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/api/events"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def grid() -> Iterator[GridServer]:
    server = GridServer()
    yield server
    server.close()


@pytest.fixture
def backend() -> AzureBackend:
    return AzureBackend(settings={"POLYSERVE_EVENTGRID_KEY": KEY})


def _deliver(app: App, event: dict[str, Any]) -> None:
    """Hand ``event`` to the app's Event Grid function as the worker decodes a delivery."""
    call(
        functions(polyserve_azure.function_app(app))["eventgrid"],
        decode("eventGridTrigger", as_json(event)),
    )


def test_cloudevents_schema_wire_format_and_round_trip(
    grid: GridServer, backend: AzureBackend
) -> None:
    topic = Topic("orders", target="cloudevents:" + grid.endpoint, backend=backend)
    sent = [Order(i, "c-1") for i in range(3)]
    ids = topic.send_batch(
        topic.message(
            o,
            attributes={"type": "shop.order.created", "source": "/shop", "tenant": "t1"},
            trace=TRACE,
        )
        for o in sent
    )
    (request,) = grid.requests
    assert request.path == "/api/events"
    assert request.query == {"api-version": ["2018-01-01"]}
    assert request.headers["aeg-sas-key"] == KEY
    assert request.headers["content-type"] == "application/cloudevents-batch+json; charset=utf-8"
    events = request.json()
    assert [e["id"] for e in events] == ids
    first = events[0]
    assert {k: first[k] for k in ("specversion", "source", "type", "datacontenttype")} == {
        "specversion": "1.0",
        "source": "/shop",
        "type": "shop.order.created",
        "datacontenttype": "application/json",
    }
    assert first["data"] == {"number": 0, "customer": "c-1"}
    assert (first["tenant"], first["traceparent"], first["tracestate"]) == (
        "t1",
        TRACE.traceparent,
        "shop=1",
    )

    app = App("shop")
    seen: list[tuple[CloudEvent, str | None]] = []

    @app.cloudevent("shop.order.created")
    def on_order(event: CloudEvent, context: Context) -> None:
        seen.append((event, context.trace_id))

    for event in events:  # Event Grid delivers each event of the array alone
        _deliver(app, event)
    assert [s[1] for s in seen] == [TRACE.trace_id] * 3
    assert [Order(**s[0].json()) for s in seen] == sent
    assert seen[0][0] == CloudEvent(
        id=ids[0],
        source="/shop",
        type="shop.order.created",
        time=dt.datetime.fromisoformat(first["time"].replace("Z", "+00:00")),
        datacontenttype="application/json",
        data={"number": 0, "customer": "c-1"},
        extensions={"tenant": "t1", "traceparent": TRACE.traceparent, "tracestate": "shop=1"},
    )


def test_cloudevents_carry_bytes_as_data_base64(grid: GridServer, backend: AzureBackend) -> None:
    topic = Topic("bin", target="cloudevents:" + grid.endpoint, backend=backend)
    topic.publish(b"\x00\x01\xff", attributes={"type": "bin.data"})
    (event,) = grid.requests[0].json()
    assert event["data_base64"] == "AAH/"
    assert "data" not in event
    app = App("bin")
    seen: list[CloudEvent] = []
    app.cloudevent("bin.data")(seen.append)
    _deliver(app, event)
    assert seen[0].data == b"\x00\x01\xff"


def test_a_cloudevent_payload_is_published_as_that_event(
    grid: GridServer, backend: AzureBackend
) -> None:
    from polyserve.outbound.cloudevents import to_dict

    topic = Topic("orders", target="cloudevents:" + grid.endpoint, backend=backend)
    given = CloudEvent(
        id="e-1",
        source="/shop",
        type="shop.order.created",
        subject="orders/1",
        time=dt.datetime(2024, 6, 3, 9, 41, tzinfo=dt.timezone.utc),
        datacontenttype="application/json",
        data={"number": 1},
        extensions={"tenant": "t1"},
    )
    assert topic.publish(given, trace=TRACE) == "e-1"
    (event,) = grid.requests[0].json()
    traced = {"traceparent": TRACE.traceparent, "tracestate": "shop=1"}
    assert event == {**to_dict(given), **traced}
    app = App("shop")
    seen: list[CloudEvent] = []
    app.cloudevent("shop.order.created")(seen.append)
    _deliver(app, event)
    assert seen == [CloudEvent(**{**vars_of(given), "extensions": {"tenant": "t1", **traced}})]
    # The structured form as a dict is an event too.
    topic.publish(to_dict(given))
    assert grid.requests[1].json() == [to_dict(given)]


def vars_of(event: CloudEvent) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(event, f.name) for f in fields(event) if f.name != "raw"}


def test_event_grid_schema_wire_format_and_round_trip(
    grid: GridServer, backend: AzureBackend
) -> None:
    topic = Topic("orders", target="eventgrid:" + grid.endpoint, backend=backend)
    (sent_id,) = topic.send_batch(
        [
            topic.message(
                Order(1, "c-9"),
                attributes={"type": "Shop.Order.Placed", "subject": "orders/1", "tenant": "t1"},
                trace=TRACE,
            )
        ]
    )
    (request,) = grid.requests
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    (event,) = request.json()
    # The Event Grid schema has exactly these fields: no place for the other attributes.
    assert set(event) == {"id", "eventType", "subject", "eventTime", "dataVersion", "data"}
    assert (event["id"], event["eventType"], event["subject"], event["dataVersion"]) == (
        sent_id,
        "Shop.Order.Placed",
        "orders/1",
        "1.0",
    )
    app = App("shop")
    seen: list[CloudEvent] = []
    app.cloudevent("Shop.Order.Placed")(seen.append)
    topic_id = "/subscriptions/0/resourceGroups/shop/providers/Microsoft.EventGrid/topics/orders"
    _deliver(app, {**event, "topic": topic_id, "metadataVersion": "1"})
    assert seen == [
        CloudEvent(
            id=sent_id,
            source=topic_id,
            type="Shop.Order.Placed",
            subject="orders/1",
            time=dt.datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")),
            data={"number": 1, "customer": "c-9"},
            extensions={"dataversion": "1.0"},
        )
    ]


def test_arrays_stay_under_one_megabyte_and_a_failed_array_fails_exactly_its_events(
    grid: GridServer, backend: AzureBackend
) -> None:
    topic = Topic(
        "big", target="cloudevents:" + grid.endpoint, backend=backend, sleep=lambda _: None
    )
    payloads = [chr(ord("a") + i) * (300 * 1024) for i in range(5)]
    grid.statuses = [200, 503, 503, 503, 503]  # the second array fails every try
    with pytest.raises(BatchPublishError) as caught:
        topic.send_batch(topic.message(p, attributes={"type": "t"}) for p in payloads)
    assert [f.index for f in caught.value.failures] == [3, 4]
    assert all(isinstance(f.error, TransientPublishError) for f in caught.value.failures)
    assert caught.value.sent == 3
    sizes = [len(r.body) for r in grid.requests]
    assert all(size <= 1024 * 1024 for size in sizes)
    assert [len(r.json()) for r in grid.requests] == [3, 2, 2, 2, 2]  # one try, three retries


def test_an_event_over_one_megabyte_is_refused_before_sending(
    grid: GridServer, backend: AzureBackend
) -> None:
    topic = Topic("big", target="cloudevents:" + grid.endpoint, backend=backend)
    with pytest.raises(MessageTooLargeError, match="Event Grid's limit of 1048576 bytes"):
        topic.publish(b"x" * (1024 * 1024 + 1))
    with pytest.raises(MessageTooLargeError):  # under the limit, over it as base64 in an event
        topic.publish(b"x" * (900 * 1024))
    assert grid.requests == []


def test_attributes_that_cannot_be_extensions_are_refused_alone(
    grid: GridServer, backend: AzureBackend
) -> None:
    from polyserve.outbound import PublishError

    topic = Topic("t", target="cloudevents:" + grid.endpoint, backend=backend)
    bad = topic.message("x", attributes={"Order-Id": "1"})
    with pytest.raises(BatchPublishError) as caught:
        topic.send_batch(["a", bad, "b"])
    ((index, error),) = [(f.index, f.error) for f in caught.value.failures]
    assert index == 1
    assert isinstance(error, PublishError)
    assert error.code == "invalid_cloudevent"
    assert [e["data"] for e in grid.requests[0].json()] == ["a", "b"]


def test_event_grid_refusals_are_typed(grid: GridServer, backend: AzureBackend) -> None:
    topic = Topic("t", target="cloudevents:" + grid.endpoint, backend=backend, sleep=lambda _: None)
    grid.statuses = [401]
    with pytest.raises(ConfigurationError, match="401"):
        topic.publish("x")
    grid.statuses = [400]
    with pytest.raises(Exception, match="planned failure") as caught:
        topic.publish("x")
    assert not isinstance(caught.value, TransientPublishError)
    nowhere = Topic("t", target="cloudevents:http://127.0.0.1:9/api/events", backend=backend)
    nowhere.sleep = lambda _: None
    with pytest.raises(TransientPublishError, match="unreachable"):
        nowhere.publish("x")
    with pytest.raises(ConfigurationError, match="POLYSERVE_EVENTGRID_KEY"):
        Topic(
            "t", target="cloudevents:" + grid.endpoint, backend=AzureBackend(settings={})
        ).publish("x")


def test_a_token_credential_is_sent_as_a_bearer_token(grid: GridServer) -> None:
    from azure.core.credentials import AccessToken

    scopes: list[str] = []

    class Credential:
        def get_token(self, *asked: str, **kwargs: Any) -> AccessToken:
            scopes.extend(asked)
            return AccessToken("token-1", 4102444800)

    backend = AzureBackend(settings={}, credential=Credential())
    topic = Topic("t", target=grid.endpoint, backend=backend)
    topic.publish({"a": 1})
    topic.publish({"a": 2})
    assert [r.headers["authorization"] for r in grid.requests] == ["Bearer token-1"] * 2
    assert scopes == ["https://eventgrid.azure.net/.default"]  # fetched once
    assert "aeg-sas-key" not in grid.requests[0].headers


# Service Bus


class Sender:
    """The part of ``ServiceBusSender`` the backend calls, without the AMQP connection:
    batches are the SDK's own, sized as the service's link would size them."""

    def __init__(self, max_size: int, fail: dict[int, Exception] | None = None) -> None:
        self.max_size = max_size
        self.fail = fail or {}
        self.sent: list[list[Any]] = []
        self.calls = 0

    def create_message_batch(self) -> Any:
        from azure.servicebus import ServiceBusMessageBatch

        return ServiceBusMessageBatch(max_size_in_bytes=self.max_size)

    def send_messages(self, batch: Any) -> None:
        self.calls += 1
        error = self.fail.get(self.calls)
        if error is not None:
            raise error
        self.sent.append(list(batch._messages))


def _with_sender(backend: AzureBackend, sender: Sender, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_sender", lambda namespace, kind, entity: sender)


def test_service_bus_messages_carry_everything(
    backend: AzureBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = Sender(256 * 1024)
    _with_sender(backend, sender, monkeypatch)
    queue = Queue("jobs", target="servicebus:jobs", backend=backend)
    ids = queue.send_batch(
        [
            queue.message(
                Order(1, "c-1"),
                attributes={"kind": "created", "subject": "orders/1"},
                key="c-1",
                dedup_id="order-1",
                trace=TRACE,
            ),
            queue.message("later", delay=60),
        ]
    )
    ((first,), (second,)) = sender.sent  # one batch per session
    assert ids[0] == "order-1"
    assert len(ids[1]) == 32
    assert b"".join(first.body) == b'{"number":1,"customer":"c-1"}'
    assert (first.session_id, first.message_id, first.content_type, first.subject) == (
        "c-1",
        "order-1",
        "application/json",
        "orders/1",
    )
    assert first.application_properties == {
        "kind": "created",
        "subject": "orders/1",
        "content-type": "application/json",
        "traceparent": TRACE.traceparent,
        "tracestate": "shop=1",
    }
    assert second.message_id == ids[1]
    delay = second.scheduled_enqueue_time_utc - dt.datetime.now(dt.timezone.utc)
    assert 50 < delay.total_seconds() <= 60


def test_a_service_bus_message_reaches_the_trigger_as_an_equal_object(
    backend: AzureBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = Sender(256 * 1024)
    _with_sender(backend, sender, monkeypatch)
    order = Order(7, "c-7")
    Queue("jobs", target="servicebus:jobs", backend=backend).send(
        order, attributes={"kind": "created"}, key="c-7", trace=TRACE
    )
    ((sent,),) = sender.sent
    # What the host passes the function for that message.
    native = service_bus_message(
        b"".join(sent.body),
        message_id=sent.message_id,
        properties=dict(sent.application_properties),
        session_id=sent.session_id,
    )
    app = App("jobs")
    seen: list[tuple[Order, Message, TraceContext | None]] = []

    @app.queue("jobs", service="servicebus")
    def on_job(job: Order, message: Message, context: Context) -> None:
        seen.append((job, message, context.trace))

    call(functions(polyserve_azure.function_app(app))["servicebus_jobs"], native)
    ((job, message, trace),) = seen
    assert job == order
    assert (message.attributes["kind"], message.group_key) == ("created", "c-7")
    assert trace is not None
    assert (trace.trace_id, trace.tracestate) == (TRACE.trace_id, "shop=1")


def test_service_bus_batches_fill_to_the_limit_and_fail_alone(
    backend: AzureBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.servicebus.exceptions import ServiceBusServerBusyError

    sender = Sender(256 * 1024, fail={2: ServiceBusServerBusyError(message="busy")})
    _with_sender(backend, sender, monkeypatch)
    queue = Queue("jobs", target="servicebus:jobs", backend=backend, delays=())
    with pytest.raises(BatchPublishError) as caught:
        queue.send_batch(b"x" * (60 * 1024) for _ in range(10))
    # 60 KiB each: four fit a 256 KiB batch. The second batch (messages 4 to 7) failed.
    assert [len(batch) for batch in sender.sent] == [4, 2]
    assert [f.index for f in caught.value.failures] == [4, 5, 6, 7]
    assert all(isinstance(f.error, TransientPublishError) for f in caught.value.failures)


def test_a_service_bus_batch_holds_one_session(
    backend: AzureBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = Sender(256 * 1024)
    _with_sender(backend, sender, monkeypatch)
    queue = Queue("jobs", target="servicebus:jobs", backend=backend)
    keys = ["a", "a", "b", "b", "b", "a", None]
    queue.send_batch(queue.message(str(i), key=k) for i, k in enumerate(keys))
    assert [[m.session_id for m in batch] for batch in sender.sent] == [
        ["a", "a"],
        ["b", "b", "b"],
        ["a"],
        [None],
    ]


def test_service_bus_size_limits_are_refused_before_sending(
    backend: AzureBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = Sender(256 * 1024)
    _with_sender(backend, sender, monkeypatch)
    queue = Queue("jobs", target="servicebus:jobs", backend=backend)
    with pytest.raises(MessageTooLargeError, match="Service Bus's limit of 262144 bytes"):
        queue.send(b"x" * (256 * 1024 + 1))
    # The body is under the limit, but with its properties the message is not.
    with pytest.raises(MessageTooLargeError):
        queue.send(b"x" * (256 * 1024 - 100), attributes={"note": "y" * 200})
    assert sender.sent == []
    premium = AzureBackend(settings={}, servicebus_tier="premium")
    assert premium.max_bytes("queue", "servicebus:jobs") == 100 * 1024 * 1024


def test_service_bus_errors_are_typed() -> None:
    from azure.servicebus import exceptions as sb

    assert isinstance(
        _servicebus_out.error(sb.MessagingEntityNotFoundError(message="gone"), "jobs"),
        ConfigurationError,
    )
    assert isinstance(
        _servicebus_out.error(sb.ServiceBusAuthorizationError(message="no"), "jobs"),
        ConfigurationError,
    )
    assert isinstance(
        _servicebus_out.error(sb.ServiceBusConnectionError(message="down"), "jobs"),
        TransientPublishError,
    )
    refused = _servicebus_out.error(ValueError("odd"), "jobs")
    assert type(refused).__name__ == "PublishError"


def test_service_bus_connection_settings() -> None:
    pytest.importorskip("azure.servicebus")
    with pytest.raises(ConfigurationError, match="ServiceBusConnection"):
        Queue("jobs", target="servicebus:jobs", backend=AzureBackend(settings={})).send("x")
    secret = "not-a-connection-string-secret"
    with pytest.raises(ConfigurationError) as caught:
        Queue(
            "jobs",
            target="servicebus:jobs",
            backend=AzureBackend(settings={"ServiceBusConnection": secret}),
        ).send("x")
    assert "secret" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="servicebus_tier"):
        AzureBackend(servicebus_tier="gold")


def test_targets_name_the_service() -> None:
    backend = AzureBackend(settings={})
    assert backend.service("queue", "orders") == "Storage Queue"
    assert backend.service("queue", "https://acct.queue.core.windows.net/orders") == "Storage Queue"
    assert backend.service("queue", "servicebus:jobs") == "Service Bus"
    assert backend.service("queue", "sb://ns.servicebus.windows.net/jobs") == "Service Bus"
    assert backend.service("topic", "events") == "Service Bus"
    assert backend.service("topic", "https://t.westeurope-1.eventgrid.azure.net/api/events") == (
        "Event Grid"
    )
    assert backend.service("bucket", "thumbnails") == "Blob"
    assert backend.max_bytes("queue", "orders") == 49152
    assert backend.max_bytes("topic", "cloudevents:https://t/api/events") == 1024 * 1024


def test_the_real_sender_without_a_server_is_a_transient_error() -> None:
    from polyserve_testkit.servers import free_ports

    (port,) = free_ports(1)  # nothing listens there
    secret = "c2VjcmV0LWtleS12YWx1ZQ=="
    backend = AzureBackend(
        settings={
            "ServiceBusConnection": (
                f"Endpoint=sb://127.0.0.1/;SharedAccessKeyName=send;SharedAccessKey={secret}"
            )
        },
        retry_total=0,
        custom_endpoint_address=f"sb://127.0.0.1:{port}",
    )
    queue = Queue("jobs", target="servicebus:jobs", backend=backend, delays=())
    with pytest.raises(TransientPublishError, match="ServiceBusConnectionError") as caught:
        queue.send("x")
    assert secret not in str(caught.value)
    backend.close()


@pytest.mark.parametrize("target", ["servicebus:", "sb://jobs", "sb://ns.servicebus.windows.net/"])
def test_a_service_bus_target_without_an_entity_is_a_configuration_error(target: str) -> None:
    with pytest.raises(ConfigurationError, match="names no Service Bus entity"):
        Queue("jobs", target=target, backend=AzureBackend(settings={})).send("x")
