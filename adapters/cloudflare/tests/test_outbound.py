"""The Cloudflare outbound backend under CPython, on fakes shaped as the Queues and R2 bindings.

The same backend runs against Miniflare's real bindings in test_miniflare.py.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import App, Context, Message
from polyserve.errors import ConfigurationError
from polyserve.outbound import (
    BatchPublishError,
    Bucket,
    MessageTooLargeError,
    ObjectNotFoundError,
    PublishError,
    Queue,
    Topic,
    TransientPublishError,
    configure,
)
from polyserve.tracing import TraceContext
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.outbound import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    CloudflareBackend,
)
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeBuffer,
    FakeDate,
    FakeExecutionContext,
    FakeMessage,
    FakeRuntime,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    configure(None, names={})
    yield
    configure(None, names={})


class FakeQueue:
    """A Queues producer binding: records each ``sendBatch`` call, fails as told."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.failures = failures or []

    async def send(self, body: Any, options: Any = None) -> None:
        raise AssertionError("the backend sends with sendBatch")

    async def sendBatch(self, entries: list[dict[str, Any]], options: Any = None) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.calls.append(entries)


@dataclass
class FakeStep:
    done: bool
    value: FakeBuffer | None = None


@dataclass
class FakeReader:
    chunks: list[bytes]
    released: bool = False

    async def read(self) -> FakeStep:
        if not self.chunks:
            return FakeStep(True)
        return FakeStep(False, FakeBuffer(self.chunks.pop(0)))

    def releaseLock(self) -> None:
        self.released = True


@dataclass
class FakeStream:
    data: bytes
    readers: list[FakeReader] = field(default_factory=list)

    def getReader(self) -> FakeReader:
        # R2 streams arrive in pieces of the platform's choosing: here, 3 bytes.
        reader = FakeReader([self.data[i : i + 3] for i in range(0, len(self.data), 3)])
        self.readers.append(reader)
        return reader


@dataclass
class FakeObject:
    key: str
    data: bytes
    options: dict[str, Any]
    body: FakeStream = field(init=False)

    def __post_init__(self) -> None:
        self.body = FakeStream(self.data)

    async def arrayBuffer(self) -> FakeBuffer:
        return FakeBuffer(self.data)


@dataclass
class FakePage:
    objects: list[FakeObject]
    truncated: bool
    cursor: str | None


class FakeR2:
    """An R2 bucket binding whose list pages hold two keys."""

    def __init__(self) -> None:
        self.objects: dict[str, FakeObject] = {}
        self.list_calls: list[dict[str, Any]] = []

    async def put(self, key: str, value: bytes, options: dict[str, Any]) -> FakeObject:
        self.objects[key] = FakeObject(key, bytes(value), options)
        return self.objects[key]

    async def get(self, key: str) -> FakeObject | None:
        return self.objects.get(key)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def list(self, options: dict[str, Any]) -> FakePage:
        self.list_calls.append(options)
        keys = sorted(k for k in self.objects if k.startswith(options["prefix"]))
        start = int(options.get("cursor", 0))
        page = keys[start : start + 2]
        more = start + 2 < len(keys)
        return FakePage([self.objects[k] for k in page], more, str(start + 2) if more else None)


class Env:
    def __init__(self, **bindings: Any) -> None:
        for name, value in bindings.items():
            setattr(self, name, value)


def backend(**bindings: Any) -> CloudflareBackend:
    return CloudflareBackend(Env(**bindings), runtime=FakeRuntime())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_payloads_travel_with_queues_content_types() -> None:
    queue = FakeQueue()
    orders = Queue("orders", backend=backend(ORDERS=queue))
    ids = run(orders.send_batch_async([{"id": 1}, "text é", b"\x00\xff", b"utf8 bytes"]))
    assert ids == ["", "", "", ""]
    assert queue.calls == [
        [
            {"body": {"id": 1}, "contentType": "json"},
            {"body": "text é", "contentType": "text"},
            {"body": b"\x00\xff", "contentType": "bytes"},
            {"body": b"utf8 bytes", "contentType": "bytes"},
        ]
    ]
    # JavaScript would read these back changed: they travel as their exact text.
    run(orders.send_batch_async([{"n": 2**60}, {"f": 1.5}]))
    assert queue.calls[-1] == [
        {"body": '{"n":1152921504606846976}', "contentType": "text"},
        {"body": {"f": 1.5}, "contentType": "json"},
    ]
    run(orders.send_async("later", delay=90, key="ignored", dedup_id="ignored"))
    assert queue.calls[-1] == [{"body": "later", "contentType": "text", "delaySeconds": 90}]


def test_attributes_and_trace_travel_in_an_envelope_the_consumer_unwraps() -> None:
    queue = FakeQueue()
    trace = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)
    topic = Topic("events", backend=backend(EVENTS=queue))
    run(topic.publish_async(b"\xff\x00", attributes={"kind": "created"}, trace=trace))
    run(topic.publish_async({"a": 1}, attributes={"kind": "updated"}))
    (first,), (second,) = queue.calls
    assert first["contentType"] == second["contentType"] == "json"
    assert first["body"]["polyserve_message"] == 1
    assert first["body"]["attributes"]["traceparent"] == trace.traceparent

    # This adapter's consumer hands the app the original body and attributes, and
    # continues the producer's trace.
    seen: list[tuple[Message, str | None]] = []
    app = App("consumer")

    @app.queue("events")
    def consume(message: Message, context: Context) -> None:
        seen.append((message, context.trace_id))

    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    when = FakeDate(1_750_000_000_000)
    batch = FakeBatch(
        "events",
        [FakeMessage("m1", first["body"], when), FakeMessage("m2", second["body"], when)],
    )
    run(worker.queue(batch))
    assert [(m.body, dict(m.attributes)) for m, _ in seen] == [
        (
            b"\xff\x00",
            {
                "kind": "created",
                "content-type": "application/octet-stream",
                "traceparent": trace.traceparent,
            },
        ),
        (b'{"a":1}', {"kind": "updated", "content-type": "application/json"}),
    ]
    assert seen[0][1] == trace.trace_id
    assert [m.settled for m in batch.messages] == ["acked", "acked"]


def test_batches_are_split_by_count_and_by_bytes() -> None:
    queue = FakeQueue()
    orders = Queue("orders", backend=backend(ORDERS=queue))
    run(orders.send_batch_async(["x"] * 150))
    assert [len(call) for call in queue.calls] == [100, 50]
    queue.calls.clear()
    big = "y" * 100_000
    run(orders.send_batch_async([big, big, big, "z"]))
    assert [len(call) for call in queue.calls] == [2, 2]
    assert all(sum(len(e["body"]) for e in call) <= MAX_BATCH_BYTES for call in queue.calls)


def test_limits_are_refused_before_sending() -> None:
    queue = FakeQueue()
    orders = Queue("orders", backend=backend(ORDERS=queue))
    with pytest.raises(MessageTooLargeError) as caught:
        run(orders.send_async("x" * (MAX_MESSAGE_BYTES + 1)))
    assert (caught.value.limit, caught.value.service) == (128_000, "Cloudflare Queues")
    # The envelope counts: a body under the limit can be over it with its attributes.
    with pytest.raises(MessageTooLargeError):
        run(orders.send_async("x" * (MAX_MESSAGE_BYTES - 10), attributes={"k": "v"}))
    with pytest.raises(PublishError, match=r"0\.\.86400"):
        run(orders.send_async("x", delay=86_401))
    assert queue.calls == []


def test_throttling_is_retried_and_refusals_reported_per_message() -> None:
    queue = FakeQueue([RuntimeError("Error: Too Many Requests")])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    orders = Queue("orders", backend=backend(ORDERS=queue), sleep_async=sleep)
    assert run(orders.send_async("a")) == ""
    assert slept == [0.05]
    queue.failures.append(RuntimeError("Error: Queue send failed: bad body"))
    with pytest.raises(BatchPublishError) as caught:
        run(orders.send_batch_async(["a", "b"]))
    assert [f.index for f in caught.value.failures] == [0, 1]
    assert not isinstance(caught.value.failures[0].error, TransientPublishError)
    assert "bad body" in str(caught.value.failures[0].error)


def test_binding_names(monkeypatch: pytest.MonkeyPatch) -> None:
    upper, exact, named, var = FakeQueue(), FakeQueue(), FakeQueue(), FakeQueue()
    env = Env(ORDER_EVENTS=upper, jobs=exact, MY_QUEUE=named, VIA_VAR=var)
    env.POLYSERVE_QUEUE_VARRED = "VIA_VAR"  # type: ignore[attr-defined]
    cf = CloudflareBackend(env, runtime=FakeRuntime())
    monkeypatch.setenv("POLYSERVE_QUEUE_MAPPED", "MY_QUEUE")
    for name in ("order-events", "jobs", "mapped", "varred"):
        run(Queue(name, backend=cf).send_async(name))
    assert [len(q.calls) for q in (upper, exact, named, var)] == [1, 1, 1, 1]
    with pytest.raises(ConfigurationError, match=r"tried MISSING, missing.*queues\.producers"):
        run(Queue("missing", backend=cf).send_async("x"))
    with pytest.raises(ConfigurationError, match="is not an R2 bucket"):
        run(Bucket("jobs", backend=cf).put_async("k", b"v"))


def test_the_current_invocations_env_is_used() -> None:
    queue = FakeQueue()
    app = App("producer")
    orders = app.queue_out("orders")
    configure(CloudflareBackend(runtime=FakeRuntime()))

    @app.post("/orders")
    async def create() -> dict[str, str]:
        await orders.send_async({"ok": True})
        return {}

    from polyserve_cloudflare.testing import FakeRequest

    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), Env(ORDERS=queue))
    response = run(worker.fetch(FakeRequest("POST", "https://w.example/orders")))
    assert response.status == 200
    assert queue.calls == [[{"body": {"ok": True}, "contentType": "json"}]]
    with pytest.raises(ConfigurationError, match="no Worker env"):
        run(Queue("orders", backend=CloudflareBackend(runtime=FakeRuntime())).send_async("x"))


def test_blocking_calls_say_to_await_the_async_ones() -> None:
    cf = backend(ORDERS=FakeQueue(), THUMBS=FakeR2())
    with pytest.raises(ConfigurationError, match=r"queue\.send_async"):
        Queue("orders", backend=cf).send("x")
    with pytest.raises(ConfigurationError, match=r"bucket\.get_async"):
        Bucket("thumbs", backend=cf).get("k")
    with pytest.raises(ConfigurationError, match="cannot presign"):
        Bucket("thumbs", backend=cf).url("k")


def test_r2_round_trip_with_streaming_reads_and_paged_lists() -> None:
    r2 = FakeR2()
    thumbs = Bucket("thumbs", backend=backend(THUMBS=r2))

    async def scenario() -> tuple[bytes, list[bytes], list[str]]:
        await thumbs.put_async("t/a.jpg", b"0123456789", content_type="image/jpeg")
        await thumbs.put_async("t/b.json", {"k": 1}, metadata={"w": "10"})
        for key in ("t/c", "t/d", "u/e"):
            await thumbs.put_async(key, key)
        data = await thumbs.get_async("t/b.json")
        chunks = [c async for c in thumbs.open_async("t/a.jpg", chunk_size=4)]
        await thumbs.delete_async("t/d")
        await thumbs.delete_async("t/d")
        keys = [k async for k in thumbs.list_async("t/")]
        return data, chunks, keys

    data, chunks, keys = run(scenario())
    assert data == b'{"k":1}'
    assert chunks == [b"0123", b"4567", b"89"]
    assert keys == ["t/a.jpg", "t/b.json", "t/c"]
    assert [c.get("cursor") for c in r2.list_calls] == [None, "2"]
    assert r2.objects["t/b.json"].options == {
        "httpMetadata": {"contentType": "application/json"},
        "customMetadata": {"w": "10"},
    }
    with pytest.raises(ObjectNotFoundError):
        run(thumbs.get_async("t/d"))
    with pytest.raises(ObjectNotFoundError):
        run(anext(thumbs.open_async("nothing")))


def test_streams_are_released_when_reading_stops_early() -> None:
    r2 = FakeR2()
    thumbs = Bucket("thumbs", backend=backend(THUMBS=r2))

    async def first_chunk() -> bytes:
        await thumbs.put_async("big", b"x" * 30)
        chunks = thumbs.open_async("big", chunk_size=5)
        chunk = await anext(chunks)
        await chunks.aclose()  # type: ignore[attr-defined]
        return chunk

    assert run(first_chunk()) == b"xxxxx"
    (reader,) = r2.objects["big"].body.readers
    assert reader.released


def test_r2_errors_are_publish_errors() -> None:
    class Broken(FakeR2):
        async def put(self, key: str, value: bytes, options: dict[str, Any]) -> FakeObject:
            raise RuntimeError("Error: put: We encountered an internal error (10001)")

    with pytest.raises(PublishError, match="10001") as caught:
        run(Bucket("thumbs", backend=backend(THUMBS=Broken())).put_async("k", b"v"))
    assert "thumbs" in str(caught.value)
    assert json.dumps(caught.value.to_dict())


def test_polyserve_outbound_cloudflare_selects_this_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from polyserve.outbound.backend import resolve_backend

    monkeypatch.setenv("POLYSERVE_OUTBOUND", "cloudflare")
    assert isinstance(resolve_backend(), CloudflareBackend)


def test_on_workers_the_entry_point_makes_cloudflare_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    # Recorded first, so that the variable the entry point sets is removed afterwards.
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "recorded")
    monkeypatch.delenv("POLYSERVE_OUTBOUND")
    entrypoint(App("cpython"), runtime=FakeRuntime())
    assert "POLYSERVE_OUTBOUND" not in os.environ
    monkeypatch.setattr(sys, "platform", "emscripten")
    entrypoint(App("workers"), runtime=FakeRuntime())
    assert os.environ["POLYSERVE_OUTBOUND"] == "cloudflare"
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "memory")
    entrypoint(App("chosen"), runtime=FakeRuntime())
    assert os.environ["POLYSERVE_OUTBOUND"] == "memory"
