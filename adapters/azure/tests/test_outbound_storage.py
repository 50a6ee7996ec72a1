"""Azure outbound against Azurite: Storage Queue and Blob Storage.

Queue round trips go send → Azurite → ``QueueHost`` (the Functions host's queue trigger:
receive, base64-decode, build ``azure.functions.QueueMessage`` with the worker's own
converter) → the function ``polyserve_azure.function_app`` generated → the handler.
Blob round trips build the blob trigger's input from the stored blob's properties.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from adapters.azure.tests.support import as_json, call, decode, functions, text

import polyserve_azure
from polyserve import App, Context, StorageAction, StorageEvent
from polyserve.errors import ConfigurationError
from polyserve.events.queue import Message  # noqa: TC001 (the handler's hints are read at run time)
from polyserve.outbound import (
    BatchPublishError,
    Bucket,
    MessageTooLargeError,
    ObjectNotFoundError,
    PublishError,
    Queue,
)
from polyserve.tracing import TraceContext
from polyserve_azure.outbound import QUEUE_LIMIT, AzureBackend

if TYPE_CHECKING:
    from collections.abc import Iterator

    from polyserve_testkit.servers import AzuriteServer

TRACE = TraceContext(
    "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True, tracestate="shop=1"
)
SETTING = "AzureWebJobsStorage"


@dataclass(frozen=True)
class Order:
    number: int
    customer: str


@pytest.fixture
def backend(azurite: AzuriteServer) -> Iterator[AzureBackend]:
    pytest.importorskip("azure.storage.blob")
    made = AzureBackend(settings={SETTING: azurite.connection_string})
    yield made
    made.close()


@pytest.fixture
def queue_name(azurite: AzuriteServer) -> str:
    from azure.storage.queue import QueueServiceClient

    name = f"orders-{uuid.uuid4().hex[:8]}"
    with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_queue(name)
    return name


def _stored(azurite: AzuriteServer, name: str) -> list[bytes]:
    from polyserve_testkit.azure_queue_host import queue_client

    with queue_client(azurite.connection_string, name) as client:
        return [bytes(m.content) for m in client.peek_messages(max_messages=32)]


def _body(stored: bytes) -> bytes:
    from polyserve_azure._envelope import unwrap

    found = unwrap(stored)
    assert found is not None
    return found.body


def _consume(azurite: AzuriteServer, name: str, app: App) -> None:
    from polyserve_testkit.azure_queue_host import QueueHost

    with QueueHost(polyserve_azure.function_app(app), {SETTING: azurite.connection_string}) as host:
        deliveries = host.run_until_empty(20)
    assert {d.outcome for d in deliveries} == {"completed"}, deliveries


def test_storage_queue_round_trip_through_the_queue_trigger(
    azurite: AzuriteServer, backend: AzureBackend, queue_name: str
) -> None:
    queue = Queue(queue_name, backend=backend)
    orders = [Order(i, f"c-{i}") for i in range(3)]
    queue.send_batch(queue.message(o, attributes={"kind": "created"}, trace=TRACE) for o in orders)
    queue.send(Order(3, "plain"))
    queue.send(b"\x00\xffraw", attributes={"kind": "bytes"})
    stored = _stored(azurite, queue_name)
    # Every message is an envelope: the service has no properties for what travels with it.
    assert stored[3] == (
        b'{"polyserve":1,"attributes":{"content-type":"application/json"},'
        b'"body":"{\\"number\\":3,\\"customer\\":\\"plain\\"}"}'
    )
    assert all(s.startswith(b'{"polyserve":1,') for s in stored)

    app = App("shop")
    seen: list[tuple[Any, dict[str, str], str | None, str | None]] = []

    @app.queue(queue_name)
    def consume(message: Message, context: Context) -> None:
        trace = context.trace
        seen.append(
            (
                message.body,
                dict(message.attributes),
                context.trace_id,
                None if trace is None else trace.tracestate,
            )
        )

    _consume(azurite, queue_name, app)
    assert len(seen) == 5
    by_body = {s[0]: s for s in seen}
    for order in orders:
        body = json.dumps({"number": order.number, "customer": order.customer}).replace(" ", "")
        got = by_body[body.encode()]
        # The attributes other services carry: the content type and the trace headers.
        assert got[1:] == (
            {
                "kind": "created",
                "content-type": "application/json",
                "traceparent": TRACE.traceparent,
                "tracestate": "shop=1",
            },
            TRACE.trace_id,
            "shop=1",
        )
    assert by_body[b'{"number":3,"customer":"plain"}'][1] == {"content-type": "application/json"}
    assert by_body[b"\x00\xffraw"][1] == {
        "kind": "bytes",
        "content-type": "application/octet-stream",
    }


def test_a_typed_handler_receives_equal_objects(
    azurite: AzuriteServer, backend: AzureBackend, queue_name: str
) -> None:
    queue = Queue(queue_name, backend=backend)
    sent = [Order(i, "c-7") for i in range(4)]
    for order in sent:
        queue.send(order, trace=TRACE)
    app = App("shop")
    received: list[tuple[Order, str | None]] = []

    @app.queue(queue_name)
    def consume(order: Order, context: Context) -> None:
        received.append((order, context.trace_id))

    _consume(azurite, queue_name, app)
    assert sorted(received, key=lambda r: r[0].number) == [(o, TRACE.trace_id) for o in sent]


def test_storage_queue_limit_is_checked_before_sending(
    azurite: AzuriteServer, backend: AzureBackend, queue_name: str
) -> None:
    plain = AzureBackend(settings={SETTING: azurite.connection_string}, envelope=False)
    queue = Queue(queue_name, backend=plain)
    assert QUEUE_LIMIT == 49152  # 64 KiB once base64-encoded
    queue.send(b"x" * QUEUE_LIMIT)  # exactly the limit: Azurite stores it
    with pytest.raises(MessageTooLargeError, match="Storage Queue's limit of 49152 bytes"):
        queue.send(b"x" * (QUEUE_LIMIT + 1))
    # Under the limit alone, over it in its envelope: refused too.
    with pytest.raises(MessageTooLargeError) as caught:
        Queue(queue_name, backend=backend).send(b"x" * (QUEUE_LIMIT - 10))
    assert caught.value.limit == QUEUE_LIMIT
    assert caught.value.size > QUEUE_LIMIT
    assert [len(s) for s in _stored(azurite, queue_name)] == [QUEUE_LIMIT]
    plain.close()


def test_a_partial_batch_failure_names_exactly_the_failed_messages(
    azurite: AzuriteServer, backend: AzureBackend, queue_name: str
) -> None:
    queue = Queue(queue_name, backend=backend, sleep=lambda _: None)
    big = queue.message(b"y" * (QUEUE_LIMIT - 20), attributes={"kind": "too big enveloped"})
    with pytest.raises(BatchPublishError) as caught:
        queue.send_batch(["a", big, "b", "c"])
    assert [(f.index, f.message) for f in caught.value.failures] == [(1, big)]
    assert isinstance(caught.value.failures[0].error, MessageTooLargeError)
    assert caught.value.sent == 3
    assert [_body(s) for s in _stored(azurite, queue_name)] == [b"a", b"b", b"c"]


def test_without_the_envelope_only_the_body_travels(
    azurite: AzuriteServer, queue_name: str
) -> None:
    backend = AzureBackend(settings={SETTING: azurite.connection_string}, envelope=False)
    Queue(queue_name, backend=backend).send({"id": 1}, attributes={"kind": "x"}, trace=TRACE)
    assert _stored(azurite, queue_name) == [b'{"id":1}']
    backend.close()


def test_targets_named_by_url_with_a_key_or_a_sas(
    azurite: AzuriteServer, queue_name: str, container: str
) -> None:
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    from azure.storage.queue import QueueSasPermissions, generate_queue_sas

    key = AzureNamedKeyCredential(azurite.account_name, azurite.account_key)
    backend = AzureBackend(settings={}, credential=key)
    Queue("q", target=f"{azurite.queue_endpoint}/{queue_name}", backend=backend).send("by key")
    expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    sas = generate_queue_sas(
        azurite.account_name,
        queue_name,
        azurite.account_key,
        permission=QueueSasPermissions(add=True),
        expiry=expiry,
    )
    no_key = AzureBackend(settings={})
    Queue("q", target=f"{azurite.queue_endpoint}/{queue_name}?{sas}", backend=no_key).send("sas")
    assert [_body(s) for s in _stored(azurite, queue_name)] == [b"by key", b"sas"]
    bucket = Bucket("b", target=f"{azurite.blob_endpoint}/{container}", backend=backend)
    bucket.put("k", b"v")
    sas = generate_container_sas(
        azurite.account_name,
        container,
        azurite.account_key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=expiry,
    )
    reader = Bucket("b", target=f"{azurite.blob_endpoint}/{container}?{sas}", backend=no_key)
    assert (reader.get("k"), list(reader.list())) == (b"v", ["k"])
    with pytest.raises(ConfigurationError, match="access refused"):
        reader.put("k2", b"not allowed")
    backend.close()
    no_key.close()


def test_missing_queue_and_connection_are_configuration_errors(
    azurite: AzuriteServer, backend: AzureBackend
) -> None:
    with pytest.raises(ConfigurationError, match="nowhere"):
        Queue("nowhere", backend=backend).send("x")
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage"):
        Queue("orders", backend=AzureBackend(settings={})).send("x")
    secret = "not-a-real-key-but-secret"
    with pytest.raises(ConfigurationError) as caught:
        Queue("orders", backend=AzureBackend(settings={SETTING: secret})).send("x")
    assert "not-a-real-key" not in str(caught.value)
    assert "secret" not in repr(AzureBackend(settings={SETTING: secret}))


# Blob Storage


@pytest.fixture
def container(azurite: AzuriteServer) -> str:
    pytest.importorskip("azure.storage.blob")
    from azure.storage.blob import BlobServiceClient

    name = f"thumbs-{uuid.uuid4().hex[:8]}"
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_container(name)
    return name


def test_blob_objects(azurite: AzuriteServer, backend: AzureBackend, container: str) -> None:
    bucket = Bucket(container, backend=backend)
    bucket.put("t/a.jpg", b"\xff\xd8jpeg", content_type="image/jpeg", metadata={"w": "10"})
    bucket.put("t/b.json", {"k": 1})
    bucket.put("u/c.txt", "other")
    assert bucket.get("t/a.jpg") == b"\xff\xd8jpeg"
    assert b"".join(bucket.open("t/b.json", chunk_size=2)) == b'{"k":1}'
    assert [len(c) for c in bucket.open("t/b.json", chunk_size=2)] == [2, 2, 2, 1]
    assert list(bucket.list("t/")) == ["t/a.jpg", "t/b.json"]
    assert list(bucket.list()) == ["t/a.jpg", "t/b.json", "u/c.txt"]
    props = backend._blob_service("").get_blob_client(container, "t/a.jpg").get_blob_properties()
    assert (props.content_settings.content_type, props.metadata) == ("image/jpeg", {"w": "10"})
    with urllib.request.urlopen(bucket.url("t/a.jpg", expires=60)) as answer:
        assert answer.read() == b"\xff\xd8jpeg"
    put = urllib.request.Request(
        bucket.url("t/sas.txt", method="PUT"),
        data=b"via sas",
        method="PUT",
        headers={"x-ms-blob-type": "BlockBlob"},
    )
    with urllib.request.urlopen(put) as answer:
        assert answer.status == 201
    assert bucket.get("t/sas.txt") == b"via sas"
    bucket.delete("t/a.jpg")
    bucket.delete("t/a.jpg")  # deleting what is not there is not an error
    with pytest.raises(ObjectNotFoundError):
        bucket.get("t/a.jpg")
    with pytest.raises(ObjectNotFoundError):
        bucket.open("t/a.jpg")


def test_streaming_reads_fetch_ranges_of_one_version(backend: AzureBackend, container: str) -> None:
    bucket = Bucket(container, backend=backend)
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    bucket.put("big.bin", data)
    chunks = bucket.open("big.bin", chunk_size=1024 * 1024)
    first = next(chunks)
    assert first == data[: 1024 * 1024]
    assert [len(c) for c in chunks] == [1024 * 1024] * 2
    reading = bucket.open("big.bin", chunk_size=1024 * 1024)
    next(reading)
    bucket.put("big.bin", b"replaced")
    with pytest.raises(PublishError, match="changed while it was read"):
        next(reading)


def test_missing_container_is_a_configuration_error(backend: AzureBackend) -> None:
    bucket = Bucket("no-such-container", backend=backend)
    with pytest.raises(ConfigurationError, match="no-such-container"):
        bucket.put("k", b"v")
    with pytest.raises(ConfigurationError, match="no-such-container"):
        bucket.get("k")


def test_a_stored_blob_reaches_the_blob_trigger_as_an_equal_event(
    backend: AzureBackend, container: str
) -> None:
    bucket = Bucket(container, backend=backend)
    bucket.put("imports/pets.csv", "id,name\n1,rex\n", content_type="text/csv")
    blob = backend._blob_service("").get_blob_client(container, "imports/pets.csv")
    props = blob.get_blob_properties()
    # What the Functions host passes a blob function: the content and the blob's properties.
    native = decode(
        "blobTrigger",
        {"type": "bytes", "value": "id,name\n1,rex\n"},
        {
            "BlobTrigger": text(f"{container}/imports/pets.csv"),
            "Uri": text(blob.url),
            "Properties": as_json(
                {
                    "ContentType": props.content_settings.content_type,
                    "ETag": props.etag,
                    "Length": props.size,
                    "LastModified": props.last_modified.isoformat(),
                }
            ),
        },
    )
    app = App("blobs")
    seen: list[StorageEvent] = []

    @app.storage(container)
    def on_blob(event: StorageEvent) -> None:
        seen.append(event)

    (blob_function,) = (
        fn for name, fn in functions(polyserve_azure.function_app(app)).items() if "blob" in name
    )
    call(blob_function, native)
    etag = props.etag.strip('"')
    assert seen == [
        StorageEvent(
            id=f"{container}/imports/pets.csv@{etag}",
            action=StorageAction.CREATED,
            bucket=container,
            key="imports/pets.csv",
            size=14,
            etag=etag,
            content_type="text/csv",
            occurred_at=props.last_modified.astimezone(dt.timezone.utc),
        )
    ]
    assert seen[0].raw.read() == bucket.get("imports/pets.csv")


def test_importing_the_backend_loads_no_sdk() -> None:
    code = (
        "import sys, polyserve_azure.outbound, polyserve.outbound, polyserve_azure._queue;"
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_polyserve_outbound_azure_selects_the_backend() -> None:
    code = (
        "import os; os.environ['POLYSERVE_OUTBOUND'] = 'azure';"
        "from polyserve.outbound.backend import resolve_backend;"
        "print(type(resolve_backend()).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "AzureBackend"
