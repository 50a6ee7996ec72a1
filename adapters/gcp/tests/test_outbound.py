"""Google Cloud outbound against the Pub/Sub emulator and gcp-storage-emulator.

Each Pub/Sub round trip goes publish → pull from a subscription → the
``messagePublished`` CloudEvent Eventarc would deliver → ``polyserve_gcp.cloudevent``,
so the consumer is the project's own inbound adapter.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import pytest

import polyserve_gcp
from polyserve import App, CloudEvent, Context
from polyserve.errors import ConfigurationError
from polyserve.events import Message
from polyserve.outbound import (
    BatchPublishError,
    Bucket,
    MessageTooLargeError,
    ObjectNotFoundError,
    Queue,
    Topic,
    TransientPublishError,
    configure,
)
from polyserve.outbound.backend import resolve_backend
from polyserve.tracing import TraceContext
from polyserve_gcp.outbound import GcpBackend
from polyserve_testkit.servers import free_ports

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from polyserve_testkit.servers import GcloudEmulator, StorageEmulator

pytestmark = pytest.mark.integration

TRACE = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)
PROJECT = "polyserve-test"


class PubSub:
    """A backend on the emulator, with the admin clients to make topics and pull."""

    def __init__(self, backend: GcpBackend) -> None:
        from google.pubsub_v1 import SubscriberClient

        self.backend = backend
        self.subscriber = SubscriberClient()

    def topic(self, prefix: str, *, ordered: bool = False) -> tuple[str, str]:
        """A new topic and its subscription: ``(topic id, subscription path)``."""
        topic_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        topic = f"projects/{PROJECT}/topics/{topic_id}"
        subscription = f"projects/{PROJECT}/subscriptions/{topic_id}-sub"
        self.backend.publisher().create_topic(name=topic)
        self.subscriber.create_subscription(
            request={"name": subscription, "topic": topic, "enable_message_ordering": ordered}
        )
        return topic_id, subscription

    def pull(self, subscription: str, count: int) -> list[Any]:
        out: list[Any] = []
        for _ in range(20):
            answer = self.subscriber.pull(subscription=subscription, max_messages=count, timeout=5)
            received = list(answer.received_messages)
            if received:
                self.subscriber.acknowledge(
                    subscription=subscription, ack_ids=[r.ack_id for r in received]
                )
                out.extend(received)
            if len(out) >= count:
                return out
        raise AssertionError(f"only {len(out)} of {count} messages arrived")


@pytest.fixture
def pubsub(pubsub_emulator: GcloudEmulator, monkeypatch: pytest.MonkeyPatch) -> PubSub:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.address)
    return PubSub(GcpBackend(project=PROJECT))


def cloudevent(topic_id: str, subscription: str, received: Any) -> Any:
    """The ``messagePublished`` CloudEvent Eventarc delivers for a pulled message."""
    import base64

    from cloudevents.http import CloudEvent

    message = received.message
    published = message.publish_time.rfc3339()
    data: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "publishTime": published,
        },
        "subscription": subscription,
    }
    if message.ordering_key:
        data["message"]["orderingKey"] = message.ordering_key
    attributes = {
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{topic_id}",
        "id": message.message_id,
        "time": published,
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, data)


def _utc(when: dt.datetime) -> dt.datetime:
    return dt.datetime(*when.utctimetuple()[:6], when.microsecond, tzinfo=dt.timezone.utc)


def expected(received: Any, source: str) -> Message:
    """The typed message the consumer should get for a pulled one."""
    message = received.message
    return Message(
        id=message.message_id,
        body=bytes(message.data),
        attributes=dict(message.attributes),
        # The publish time to the microsecond (cut, as the adapter cuts Google's nanoseconds);
        # read from its fields, as Python 3.10's fromisoformat takes only 3 or 6 digits.
        enqueued_at=_utc(message.publish_time),
        source=source,
        group_key=message.ordering_key or None,
    )


def test_queue_round_trip_through_the_cloudevent_handler(pubsub: PubSub) -> None:
    topic_id, subscription = pubsub.topic("orders", ordered=True)
    queue = Queue("orders", target=f"{PROJECT}/{topic_id}", backend=pubsub.backend)
    ids = queue.send_batch(
        queue.message({"n": i}, attributes={"kind": "created"}, key="customer-1", trace=TRACE)
        for i in range(12)
    )
    assert len(set(ids)) == 12
    app = App("shop")
    seen: list[tuple[Message, str | None]] = []

    @app.queue("orders")
    def consume(message: Message, context: Context) -> None:
        seen.append((message, context.trace_id))

    received = pubsub.pull(subscription, 12)
    handle = polyserve_gcp.cloudevent(app, names={topic_id: "orders"})
    for one in received:
        assert handle(cloudevent(topic_id, subscription, one)) is None
    assert [m for m, _ in seen] == [expected(r, "orders") for r in received]
    # Ordered delivery: one ordering key, in the order sent.
    assert [m.json()["n"] for m, _ in seen] == list(range(12))
    assert {m.group_key for m, _ in seen} == {"customer-1"}
    assert seen[0][0].attributes == {
        "kind": "created",
        "content-type": "application/json",
        "traceparent": TRACE.traceparent,
    }
    assert {trace_id for _, trace_id in seen} == {TRACE.trace_id}


def test_topic_publish_reaches_a_topic_handler(pubsub: PubSub) -> None:
    topic_id, subscription = pubsub.topic("events")
    topic = Topic("events", target=f"projects/{PROJECT}/topics/{topic_id}", backend=pubsub.backend)
    topic.publish(b"\x00\xffbinary", attributes={"kind": "shipped"})
    app = App("shop")
    seen: list[Message] = []

    @app.topic("events")
    def on_event(message: Message) -> None:
        seen.append(message)

    (received,) = pubsub.pull(subscription, 1)
    polyserve_gcp.cloudevent(app, names={topic_id: "events"})(
        cloudevent(topic_id, subscription, received)
    )
    assert seen == [expected(received, "events")]
    assert seen[0].body == b"\x00\xffbinary"
    assert seen[0].attributes["content-type"] == "application/octet-stream"


CLOUDEVENTS = [
    CloudEvent(
        id="e1", source="/shop", type="order.created", data={"id": 1, "total": 9.5},
        datacontenttype="application/json", subject="orders/1",
        time=dt.datetime(2026, 3, 1, 12, 30, 5, 123000, tzinfo=dt.timezone.utc),
        dataschema="https://example.com/order.json", extensions={"tenant": "t1"},
    ),
    CloudEvent(id="e2", source="/shop", type="thumb.made", data=b"\x00\xff\xd8jpeg"),
    CloudEvent(id="e3", source="/shop", type="note", data="caf\u00e9", datacontenttype="text/plain"),
]  # fmt: skip


def test_a_cloudevent_travels_in_binary_mode_and_reads_back_equal(pubsub: PubSub) -> None:
    """The Pub/Sub binding's binary content mode: ``ce-`` attributes, the data as the
    message data; a handler that takes a CloudEvent gets an equal one, in the trace."""
    topic_id, subscription = pubsub.topic("cloudevents")
    topic = Topic("events", target=f"{PROJECT}/{topic_id}", backend=pubsub.backend)
    for event in CLOUDEVENTS:
        topic.publish(event, attributes={"kind": "ce"}, trace=TRACE)
    received = sorted(pubsub.pull(subscription, 3), key=lambda r: r.message.attributes["ce-id"])
    first = received[0].message
    assert bytes(first.data) == b'{"id":1,"total":9.5}'
    assert dict(first.attributes) == {
        "ce-specversion": "1.0", "ce-id": "e1", "ce-source": "/shop",
        "ce-type": "order.created", "ce-subject": "orders/1",
        "ce-dataschema": "https://example.com/order.json",
        "ce-time": "2026-03-01T12:30:05.123000Z", "ce-tenant": "t1",
        "content-type": "application/json", "kind": "ce", "traceparent": TRACE.traceparent,
    }  # fmt: skip
    assert bytes(received[1].message.data) == b"\x00\xff\xd8jpeg"
    assert "content-type" not in received[1].message.attributes
    app = App("shop")
    seen: list[tuple[CloudEvent, str | None]] = []

    @app.topic("events")
    def on_event(event: CloudEvent, context: Context) -> None:
        seen.append((event, context.trace_id))

    handle = polyserve_gcp.cloudevent(app, names={topic_id: "events"})
    for one in received:
        handle(cloudevent(topic_id, subscription, one))
    assert [event for event, _ in seen] == CLOUDEVENTS
    assert {trace_id for _, trace_id in seen} == {TRACE.trace_id}


def test_one_request_per_ordering_key_keeps_each_keys_order(pubsub: PubSub) -> None:
    topic_id, subscription = pubsub.topic("keys", ordered=True)
    queue = Queue("keys", target=f"{PROJECT}/{topic_id}", backend=pubsub.backend)
    queue.send_batch(queue.message(f"{i % 3}:{i}", key=f"k{i % 3}") for i in range(30))
    bodies = [r.message.data.decode() for r in pubsub.pull(subscription, 30)]
    for key in "012":
        mine = [int(b.split(":")[1]) for b in bodies if b.startswith(key + ":")]
        assert mine == sorted(mine)
        assert len(mine) == 10


def test_a_refused_message_fails_alone(pubsub: PubSub) -> None:
    topic_id, subscription = pubsub.topic("partial")
    queue = Queue("partial", target=f"{PROJECT}/{topic_id}", backend=pubsub.backend)
    bad = queue.message("bad", attributes={"goog-reserved": "x"})
    long_value = queue.message("long", attributes={"a": "v" * 1025})
    with pytest.raises(BatchPublishError) as caught:
        queue.send_batch(["0", bad, "2", long_value, "4"])
    failures = caught.value.failures
    assert [(f.index, f.message.body) for f in failures] == [(1, b"bad"), (3, b"long")]
    assert "reserved by Pub/Sub" in str(failures[0].error)
    assert "limit of 1024" in str(failures[1].error)
    assert caught.value.sent == 3
    sent = sorted(r.message.data for r in pubsub.pull(subscription, 3))
    assert sent == [b"0", b"2", b"4"]


def test_size_limit_is_checked_before_sending(pubsub: PubSub) -> None:
    topic_id, subscription = pubsub.topic("big")
    queue = Queue("big", target=f"{PROJECT}/{topic_id}", backend=pubsub.backend)
    with pytest.raises(MessageTooLargeError, match="Pub/Sub's limit of 10000000 bytes"):
        queue.send(b"x" * 10_000_001)
    queue.send(b"y" * 2_000_000)  # well over the 256 KiB other clouds take
    (received,) = pubsub.pull(subscription, 1)
    assert len(received.message.data) == 2_000_000


def test_missing_topic_and_project_are_configuration_errors(
    pubsub: PubSub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Queue("nowhere", target=f"{PROJECT}/nowhere", backend=pubsub.backend).send("x")
    with pytest.raises(ConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        Queue("bare", target="bare", backend=GcpBackend()).send("x")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    assert GcpBackend().topic_path("bare") == f"projects/{PROJECT}/topics/bare"


def test_unreachable_service_is_retried_then_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = free_ports(1)  # nothing listens there: every call is UNAVAILABLE
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
    slept: list[float] = []
    queue = Queue(
        "down", target=f"{PROJECT}/down", backend=GcpBackend(timeout=5), sleep=slept.append
    )
    with pytest.raises(TransientPublishError):
        queue.send("x")
    assert slept == [0.05, 0.2, 0.8]


@contextlib.contextmanager
def stub_pubsub(
    publish: Callable[[Any, Any], Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A gRPC server on a free port answering ``Publish`` with ``publish``, as the emulator."""
    from concurrent import futures

    import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
    from google.pubsub_v1 import PublishRequest, PublishResponse

    handler = grpc.method_handlers_generic_handler(
        "google.pubsub.v1.Publisher",
        {
            "Publish": grpc.unary_unary_rpc_method_handler(
                publish,
                request_deserializer=PublishRequest.deserialize,
                response_serializer=PublishResponse.serialize,
            )
        },
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=1),
        options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)],
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")
        yield
    finally:
        server.stop(None)


def test_a_keys_later_requests_wait_for_its_failed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 10 MB of one ordering key goes in two requests; when the first fails, the
    second is not sent before it, so the key's order holds through the retry."""
    import grpc
    from google.pubsub_v1 import PublishResponse

    calls: list[list[bytes]] = []

    def publish(request: Any, context: Any) -> Any:
        calls.append([m.data[:1] for m in request.messages])
        if len(calls) == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return PublishResponse(message_ids=[str(len(calls))] * len(request.messages))

    with stub_pubsub(publish, monkeypatch):
        queue = Queue("big", target=f"{PROJECT}/big", backend=GcpBackend(), sleep=lambda _: None)
        big = 6_000_000
        ids = queue.send_batch(
            [
                queue.message(b"A" * big, key="k"),
                queue.message(b"B" * big, key="k"),
                queue.message(b"C"),
            ]
        )
    assert calls == [[b"A"], [b"C"], [b"A"], [b"B"]]
    assert ids == ["3", "4", "2"]


@pytest.mark.parametrize(("over", "requests"), [(0, 1), (1, 2)])
def test_requests_are_split_by_attribute_bytes_not_characters(
    monkeypatch: pytest.MonkeyPatch, over: int, requests: int
) -> None:
    """Attributes count in UTF-8 bytes: 99 attributes of 341 euro signs are 101 KiB, though
    34 K characters. Two messages filling the 10 MB request budget exactly go in one
    request; one byte more splits them, and no request Pub/Sub gets is over 10 MB."""
    from google.pubsub_v1 import PublishRequest, PublishResponse

    from polyserve_gcp.outbound import MAX_REQUEST_BYTES, _checked

    sizes: list[int] = []

    def publish(request: Any, context: Any) -> Any:
        sizes.append(PublishRequest.pb(request).ByteSize())
        return PublishResponse(message_ids=[str(i) for i in range(len(request.messages))])

    topic = f"projects/{PROJECT}/topics/wide"
    budget = MAX_REQUEST_BYTES - len(topic) - 64
    queue = Queue("wide", target=topic, backend=GcpBackend(), sleep=lambda _: None)
    wide = {f"a{i:02d}": "\u20ac" * 341 for i in range(99)}  # 1,023 bytes each
    first = queue.message(b"x" * 4_000_000, attributes=wide)
    first_size = _checked(first.body, None, first.headers())
    rest = budget - int(first_size) - int(_checked(b"", None, first.headers()))
    second = queue.message(b"y" * (rest + over), attributes=wide)
    characters = sum(len(k) + len(v) for k, v in first.headers().items()) * 2
    assert characters + len(first.body) + len(second.body) < budget - 100_000
    with stub_pubsub(publish, monkeypatch):
        assert len(queue.send_batch([first, second])) == 2
    assert len(sizes) == requests
    assert max(sizes) <= MAX_REQUEST_BYTES


def test_missing_credentials_are_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="no Google Cloud credentials"):
        Queue("q", target=f"{PROJECT}/q", backend=GcpBackend()).send("x")


def test_a_missing_sdk_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['google.pubsub_v1'] = None\n"
        "from polyserve.errors import MissingDependencyError\n"
        "from polyserve.outbound import Queue\n"
        "from polyserve_gcp.outbound import GcpBackend\n"
        "try:\n"
        "    Queue('q', target='p/q', backend=GcpBackend()).send('x')\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "polyserve-gcp[outbound]" in out.stdout
    assert "google-cloud-pubsub" in out.stdout


def test_polyserve_outbound_gcp_selects_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "gcp")
    configure(None)
    assert isinstance(resolve_backend(), GcpBackend)


# -- Cloud Storage ---------------------------------------------------------------------


@pytest.fixture
def storage(storage_emulator: StorageEmulator) -> GcpBackend:
    backend = GcpBackend(
        storage_options={
            "project": storage_emulator.project,
            "credentials": _anonymous(),
            "client_options": {"api_endpoint": storage_emulator.endpoint_url},
        },
        signing_credentials=_service_account(),
    )
    return backend


def _anonymous() -> Any:
    """Credentials that sign nothing (the emulator takes any)."""
    from google.auth.credentials import AnonymousCredentials

    make: Any = AnonymousCredentials  # google-auth's constructors are untyped
    return make()


def _service_account() -> Any:
    """Service-account credentials with a key made here: they sign URLs offline."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    make: Any = service_account.Credentials.from_service_account_info
    return make(
        {
            "type": "service_account",
            "client_email": "signer@polyserve-test.iam.gserviceaccount.com",
            "private_key": pem,
            "private_key_id": "test",
            "token_uri": "https://oauth2.googleapis.com/token",
            "project_id": PROJECT,
        }
    )


def test_cloud_storage_objects(storage: GcpBackend) -> None:
    name = f"thumbs-{uuid.uuid4().hex[:8]}"
    storage.storage().create_bucket(name)
    bucket = Bucket("thumbs", target=f"gs://{name}", backend=storage)
    bucket.put("t/a.jpg", b"\xff\xd8jpeg", content_type="image/jpeg", metadata={"w": "10"})
    bucket.put("t/b.json", {"k": 1})
    bucket.put("u/c.txt", "other prefix")
    assert bucket.get("t/a.jpg") == b"\xff\xd8jpeg"
    assert list(bucket.list("t/")) == ["t/a.jpg", "t/b.json"]
    assert list(bucket.list()) == ["t/a.jpg", "t/b.json", "u/c.txt"]
    blob = storage.storage().bucket(name).get_blob("t/a.jpg")
    assert (blob.content_type, blob.metadata) == ("image/jpeg", {"w": "10"})
    bucket.delete("t/a.jpg")
    bucket.delete("t/a.jpg")  # not there any more: not an error
    with pytest.raises(ObjectNotFoundError):
        bucket.get("t/a.jpg")
    with pytest.raises(ObjectNotFoundError):
        bucket.open("t/a.jpg")


def test_streaming_reads_come_in_ranged_chunks(storage: GcpBackend) -> None:
    name = f"big-{uuid.uuid4().hex[:8]}"
    storage.storage().create_bucket(name)
    bucket = Bucket("big", target=name, backend=storage)
    data = bytes(range(256)) * 1000
    bucket.put("blob.bin", data)
    chunks = list(bucket.open("blob.bin", chunk_size=64 * 1024))
    assert [len(c) for c in chunks] == [65536, 65536, 65536, 59392]
    assert b"".join(chunks) == data


def test_signed_urls_read_and_write(storage: GcpBackend) -> None:
    name = f"signed-{uuid.uuid4().hex[:8]}"
    storage.storage().create_bucket(name)
    bucket = Bucket("signed", target=name, backend=storage)
    bucket.put("a b/c.txt", "hello")
    url = bucket.url("a b/c.txt", expires=60)
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in url
    assert "X-Goog-Expires=60" in url
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"hello"
    put = urllib.request.Request(bucket.url("d.txt", method="PUT"), data=b"put", method="PUT")
    with urllib.request.urlopen(put) as answer:
        assert answer.status == 200
    assert bucket.get("d.txt") == b"put"


def test_unsigned_credentials_cannot_sign(storage_emulator: StorageEmulator) -> None:
    backend = GcpBackend(
        storage_options={
            "project": storage_emulator.project,
            "credentials": _anonymous(),
            "client_options": {"api_endpoint": storage_emulator.endpoint_url},
        }
    )
    with pytest.raises(ConfigurationError, match="service-account credentials"):
        Bucket("b", target="b", backend=backend).url("k")


def test_missing_bucket_is_a_configuration_error(storage: GcpBackend) -> None:
    bucket = Bucket("gone", target="no-such-bucket", backend=storage)
    with pytest.raises(ConfigurationError, match="no-such-bucket"):
        bucket.put("k", b"x")


def test_importing_the_backend_loads_no_sdk() -> None:
    # The bare ``google`` and ``google.cloud`` namespaces come from site-packages' .pth files.
    code = (
        "import sys, polyserve_gcp.outbound, polyserve.outbound;"
        "print(sorted(m for m in sys.modules if m.startswith(('google.', 'grpc'))"
        " and m != 'google.cloud'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
