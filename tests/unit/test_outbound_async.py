"""The async face of outbound resources: ``send_async``, ``publish_async`` and ``Bucket.*_async``.

An async backend (``send_async``, ``put_async`` ...) is awaited; a blocking one
is run in a worker thread, with the same limits, batches, retries and errors.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import pytest

from polyserve.outbound import (
    BatchPublishError,
    Bucket,
    MemoryBackend,
    MessageTooLargeError,
    ObjectNotFoundError,
    PublishError,
    Queue,
    Topic,
    TransientPublishError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from polyserve.outbound import Message


class AsyncRecording:
    """An async-only message backend that fails as told and records each awaited call."""

    needs_target = True

    def __init__(self, plan: dict[bytes, list[Exception]] | None = None, batch: int = 3) -> None:
        self.plan = plan or {}
        self.batch = batch
        self.calls: list[list[bytes]] = []

    def service(self, kind: str, target: str) -> str:
        return "AsyncRecording"

    def max_bytes(self, kind: str, target: str) -> int:
        return 10

    def max_batch(self, kind: str, target: str) -> int:
        return self.batch

    def send(self, kind: str, target: str, messages: Sequence[Message]) -> list[str | Exception]:
        raise AssertionError("the async path must not call send")

    async def send_async(
        self, kind: str, target: str, messages: Sequence[Message]
    ) -> list[str | Exception]:
        await asyncio.sleep(0)
        self.calls.append([m.body for m in messages])
        out: list[str | Exception] = []
        for m in messages:
            errors = self.plan.get(m.body)
            out.append(errors.pop(0) if errors else f"{kind}:{target}:{m.body.decode()}")
        return out


def test_send_async_awaits_the_backend_with_batches_and_retries() -> None:
    plan: dict[bytes, list[Exception]] = {b"4": [TransientPublishError("busy")]}
    backend = AsyncRecording(plan)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    queue = Queue("orders", target="q", backend=backend, sleep_async=sleep)
    ids = asyncio.run(queue.send_batch_async([str(i) for i in range(5)]))
    assert ids == [f"queue:q:{i}" for i in range(5)]
    assert backend.calls == [[b"0", b"1", b"2"], [b"3", b"4"], [b"4"]]
    assert slept == [0.05]
    assert asyncio.run(queue.send_async("x", delay=5)) == "queue:q:x"
    topic = Topic("events", target="t", backend=backend)
    assert asyncio.run(topic.publish_async({"a": 1})) == 'topic:t:{"a":1}'


def test_async_errors_match_the_blocking_ones() -> None:
    backend = AsyncRecording({b"1": [PublishError("refused")]})
    queue = Queue("orders", target="q", backend=backend, sleep_async=lambda _: asyncio.sleep(0))
    with pytest.raises(MessageTooLargeError, match="limit of 10 bytes"):
        asyncio.run(queue.send_async("x" * 11))
    assert backend.calls == []
    with pytest.raises(BatchPublishError) as caught:
        asyncio.run(queue.send_batch_async(["0", "1", "2"]))
    assert [(f.index, f.message.body) for f in caught.value.failures] == [(1, b"1")]
    backend.plan[b"y"] = [PublishError("refused")]
    with pytest.raises(PublishError, match="refused"):
        asyncio.run(queue.send_async("y"))


def test_a_blocking_backend_runs_in_a_worker_thread() -> None:
    threads: list[str] = []

    class Blocking(MemoryBackend):
        def send(
            self, kind: str, target: str, messages: Sequence[Message]
        ) -> list[str | Exception]:
            threads.append(threading.current_thread().name)
            return super().send(kind, target, messages)

    backend = Blocking()
    assert asyncio.run(Queue("orders", backend=backend).send_async("job")) == "1"
    assert [m.body for m in backend.messages("orders")] == [b"job"]
    assert len(threads) == 1
    assert threads[0] != threading.main_thread().name


def test_bucket_async_round_trip_on_a_blocking_backend() -> None:
    memory = MemoryBackend()
    bucket = Bucket("thumbs", backend=memory)

    async def scenario() -> tuple[bytes, list[bytes], list[str]]:
        await bucket.put_async("t/a", b"abcde", content_type="image/jpeg", metadata={"w": "1"})
        await bucket.put_async("t/b", {"k": 1})
        data = await bucket.get_async("t/b")
        chunks = [c async for c in bucket.open_async("t/a", chunk_size=2)]
        await bucket.delete_async("t/b")
        keys = [k async for k in bucket.list_async("t/")]
        return data, chunks, keys

    data, chunks, keys = asyncio.run(scenario())
    assert data == b'{"k":1}'
    assert chunks == [b"ab", b"cd", b"e"]
    assert keys == ["t/a"]
    assert memory.objects[("thumbs", "t/a")].content_type == "image/jpeg"
    with pytest.raises(ObjectNotFoundError):
        asyncio.run(bucket.get_async("t/b"))
    with pytest.raises(MessageTooLargeError):
        asyncio.run(Bucket("b", backend=MemoryBackend(max_object_bytes=2)).put_async("k", "abc"))


class AsyncObjects(MemoryBackend):
    """A bucket backend whose async methods are the ones that must be used."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited: list[str] = []

    async def put_async(
        self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        self.awaited.append("put")
        self.put(target, key, data, content_type, metadata)

    async def get_async(self, target: str, key: str) -> bytes:
        self.awaited.append("get")
        return self.get(target, key)

    async def open_async(self, target: str, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        self.awaited.append("open")
        for chunk in self.open(target, key, chunk_size):
            yield chunk

    async def delete_async(self, target: str, key: str) -> None:
        self.awaited.append("delete")
        self.delete(target, key)

    async def list_async(self, target: str, prefix: str) -> AsyncIterator[str]:
        self.awaited.append("list")
        for key in self.list(target, prefix):
            yield key


def test_bucket_async_methods_of_the_backend_are_awaited() -> None:
    backend = AsyncObjects()
    bucket = Bucket("b", backend=backend)

    async def scenario() -> tuple[bytes, list[bytes], list[str]]:
        await bucket.put_async("k", "text")
        data = await bucket.get_async("k")
        chunks = [c async for c in bucket.open_async("k", chunk_size=3)]
        keys = [k async for k in bucket.list_async()]
        await bucket.delete_async("k")
        return data, chunks, keys

    assert asyncio.run(scenario()) == (b"text", [b"tex", b"t"], ["k"])
    assert backend.awaited == ["put", "get", "open", "list", "delete"]
    assert backend.objects == {}
