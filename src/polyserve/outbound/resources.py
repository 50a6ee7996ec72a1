"""Queues, topics and buckets named logically, sent to through the backend in use."""

from __future__ import annotations

from polyserve.outbound.backend import resolve_backend, resolve_target
from polyserve.outbound.errors import (
    BatchPublishError,
    MessageTooLargeError,
    PublishError,
    TransientPublishError,
)
from polyserve.outbound.message import STRUCTURED_TYPE, Failure, Message, encode_payload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Iterable,
        Iterator,
        Mapping,
        Sequence,
    )
    from typing import Any

    from polyserve.outbound.backend import MessageBackend, ObjectBackend
    from polyserve.tracing import TraceContext

__all__ = ["Bucket", "Queue", "Topic"]

_NO_ATTRIBUTES: Mapping[str, str] = {}


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


class _Resource:
    __slots__ = ("_backend", "_target", "backend", "kind", "name", "target")

    kind: str

    def __init__(self, name: str, *, target: str | None = None, backend: object | None = None):
        self.name = name
        self.target = target
        self.backend = backend
        self._backend: Any = None
        self._target = ""

    def _bound(self) -> tuple[Any, str]:
        backend = self._backend
        if backend is None:
            backend = self.backend if self.backend is not None else resolve_backend()
            required = getattr(backend, "needs_target", True)
            self._target = resolve_target(self.kind, self.name, self.target, required)
            self._backend = backend
        return backend, self._target

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _Sender(_Resource):
    __slots__ = ("delays", "sleep", "sleep_async")

    def __init__(
        self,
        name: str,
        *,
        target: str | None = None,
        backend: object | None = None,
        delays: Sequence[float] = (0.05, 0.2, 0.8),
        sleep: Callable[[float], None] = _sleep,
        sleep_async: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(name, target=target, backend=backend)
        self.delays = tuple(delays)
        self.sleep = sleep
        self.sleep_async = _sleep_async if sleep_async is None else sleep_async

    def message(
        self,
        payload: Any,
        *,
        attributes: Mapping[str, str] | None = None,
        key: str | None = None,
        dedup_id: str | None = None,
        delay: int = 0,
        trace: TraceContext | None = None,
    ) -> Message:
        """``payload`` encoded as a message, for ``send_batch``."""
        body, content_type = encode_payload(payload)
        return Message(
            body, content_type, attributes or _NO_ATTRIBUTES, key, dedup_id, delay, trace,
            payload if content_type == STRUCTURED_TYPE else None,
        )  # fmt: skip

    def _send(self, message: Message) -> str:
        result = self._send_all([message], raise_partial=False)
        outcome = result[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def send_batch(self, messages: Iterable[Message | Any]) -> list[str]:
        """Send every message (payloads are encoded as ``message`` does), in as few calls as
        the service allows; the ids, in order.

        Raises:
            MessageTooLargeError: a message is over the limit; nothing was sent.
            BatchPublishError: some messages were not sent, after retries; its
                ``failures`` are exactly those (position, message, error).
        """
        items = [m if isinstance(m, Message) else self.message(m) for m in messages]
        return self._send_all(items, raise_partial=True)  # type: ignore[return-value]

    def _prepared(self, messages: list[Message]) -> tuple[Any, str, int]:
        # The backend, the target and its batch size, once no message is over the limit.
        backend: MessageBackend
        backend, target = self._bound()
        kind = self.kind
        limit = backend.max_bytes(kind, target)
        # A backend whose service counts more than the body (attributes, an encoding)
        # says so with ``message_size``.
        measure = getattr(backend, "message_size", None)
        for message in messages:
            size = len(message.body) if measure is None else measure(kind, target, message)
            if size > limit:
                service = backend.service(kind, target)
                raise MessageTooLargeError(self.name, size, limit, service)
        return backend, target, backend.max_batch(kind, target)

    def _send_all(self, messages: list[Message], *, raise_partial: bool) -> list[str | Exception]:
        backend, target, size = self._prepared(messages)
        results: list[str | Exception] = [None] * len(messages)  # type: ignore[list-item]
        pending = list(range(len(messages)))
        for attempt in range(len(self.delays) + 1):
            if attempt:
                self.sleep(self.delays[attempt - 1])
            retry: list[int] = []
            for start in range(0, len(pending), size):
                chunk = pending[start : start + size]
                try:
                    outcomes = backend.send(self.kind, target, [messages[i] for i in chunk])
                except PublishError as exc:  # the whole call failed: each of its messages did
                    outcomes = [exc] * len(chunk)
                _record(results, chunk, outcomes, retry)
            if not retry:
                break
            pending = retry
        return self._finished(messages, results, raise_partial)

    async def _send_all_async(
        self, messages: list[Message], *, raise_partial: bool
    ) -> list[str | Exception]:
        # The same steps as _send_all, awaiting the backend's send_async (a backend
        # without one has its send run in a worker thread) and the delays.
        backend, target, size = self._prepared(messages)
        send = getattr(backend, "send_async", None)
        results: list[str | Exception] = [None] * len(messages)  # type: ignore[list-item]
        pending = list(range(len(messages)))
        for attempt in range(len(self.delays) + 1):
            if attempt:
                await self.sleep_async(self.delays[attempt - 1])
            retry: list[int] = []
            for start in range(0, len(pending), size):
                chunk = pending[start : start + size]
                batch = [messages[i] for i in chunk]
                try:
                    if send is None:
                        outcomes = await _in_thread(backend.send, self.kind, target, batch)
                    else:
                        outcomes = await send(self.kind, target, batch)
                except PublishError as exc:
                    outcomes = [exc] * len(chunk)
                _record(results, chunk, outcomes, retry)
            if not retry:
                break
            pending = retry
        return self._finished(messages, results, raise_partial)

    def _finished(
        self, messages: list[Message], results: list[str | Exception], raise_partial: bool
    ) -> list[str | Exception]:
        if raise_partial:
            failures = [
                Failure(i, messages[i], r)
                for i, r in enumerate(results)
                if isinstance(r, Exception)
            ]
            if failures:
                raise BatchPublishError(self.name, failures, len(messages) - len(failures))
        return results

    async def _send_async(self, message: Message) -> str:
        outcome = (await self._send_all_async([message], raise_partial=False))[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def send_batch_async(self, messages: Iterable[Message | Any]) -> list[str]:
        """``send_batch`` for async handlers (required on Workers, whose bindings are async)."""
        items = [m if isinstance(m, Message) else self.message(m) for m in messages]
        return await self._send_all_async(items, raise_partial=True)  # type: ignore[return-value]


def _record(
    results: list[str | Exception],
    chunk: list[int],
    outcomes: Sequence[str | Exception],
    retry: list[int],
) -> None:
    for index, outcome in zip(chunk, outcomes, strict=True):
        results[index] = outcome
        if isinstance(outcome, TransientPublishError):
            retry.append(index)


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


async def _sleep_async(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


class Queue(_Sender):
    """A queue to send jobs to: SQS, Storage Queue or Service Bus queue, Pub/Sub, Cloudflare Queues."""

    __slots__ = ()
    kind = "queue"

    def send(
        self,
        payload: Any,
        *,
        attributes: Mapping[str, str] | None = None,
        key: str | None = None,
        dedup_id: str | None = None,
        delay: int = 0,
        trace: TraceContext | None = None,
    ) -> str:
        """Send one message; its id. Transient failures are retried with backoff.

        Raises:
            MessageTooLargeError: ``payload`` is over the service's limit (nothing sent).
            PublishError: the service refused it (``TransientPublishError`` after retries).
            ConfigurationError: no backend, or no target for this name.
        """
        return self._send(
            self.message(
                payload, attributes=attributes, key=key, dedup_id=dedup_id, delay=delay, trace=trace
            )
        )

    async def send_async(
        self,
        payload: Any,
        *,
        attributes: Mapping[str, str] | None = None,
        key: str | None = None,
        dedup_id: str | None = None,
        delay: int = 0,
        trace: TraceContext | None = None,
    ) -> str:
        """``send`` for async handlers: ``await orders.send_async(...)``. Raises as ``send`` does.

        Needed where the backend is asynchronous (Cloudflare Workers' bindings);
        elsewhere a backend's blocking send runs in a worker thread.
        """
        return await self._send_async(
            self.message(
                payload, attributes=attributes, key=key, dedup_id=dedup_id, delay=delay, trace=trace
            )
        )


class Topic(_Sender):
    """A topic or event bus to publish to: SNS, EventBridge, Service Bus topic, Event Grid, Pub/Sub."""

    __slots__ = ()
    kind = "topic"

    def publish(
        self,
        payload: Any,
        *,
        attributes: Mapping[str, str] | None = None,
        key: str | None = None,
        dedup_id: str | None = None,
        trace: TraceContext | None = None,
    ) -> str:
        """Publish one message; its id. Raises as ``Queue.send`` does."""
        return self._send(
            self.message(payload, attributes=attributes, key=key, dedup_id=dedup_id, trace=trace)
        )

    async def publish_async(
        self,
        payload: Any,
        *,
        attributes: Mapping[str, str] | None = None,
        key: str | None = None,
        dedup_id: str | None = None,
        trace: TraceContext | None = None,
    ) -> str:
        """``publish`` for async handlers (see ``Queue.send_async``)."""
        return await self._send_async(
            self.message(payload, attributes=attributes, key=key, dedup_id=dedup_id, trace=trace)
        )


class Bucket(_Resource):
    """A bucket of objects: S3, Azure Blob, Cloud Storage, R2."""

    __slots__ = ()
    kind = "bucket"

    def put(
        self,
        key: str,
        data: Any,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Store ``data`` (encoded as messages are) under ``key``.

        Raises:
            MessageTooLargeError: over the service's limit for one upload.
        """
        backend, target, body, found_type = self._encoded(data)
        backend.put(target, key, body, content_type or found_type, metadata or _NO_ATTRIBUTES)

    def _encoded(self, data: Any) -> tuple[Any, str, bytes, str]:
        backend: ObjectBackend
        backend, target = self._bound()
        body, found_type = encode_payload(data)
        limit = backend.max_bytes("bucket", target)
        if len(body) > limit:
            raise MessageTooLargeError(
                self.name, len(body), limit, backend.service("bucket", target)
            )
        return backend, target, body, found_type

    def get(self, key: str) -> bytes:
        """The object's bytes. Raises ``ObjectNotFoundError`` when there is none."""
        backend, target = self._bound()
        data: bytes = backend.get(target, key)
        return data

    def open(self, key: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's bytes in chunks, read as they are consumed (for large objects)."""
        backend, target = self._bound()
        chunks: Iterator[bytes] = backend.open(target, key, chunk_size)
        return chunks

    def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is not an error."""
        backend, target = self._bound()
        backend.delete(target, key)

    def list(self, prefix: str = "") -> Iterator[str]:
        """The keys that start with ``prefix``, in order, fetched page by page."""
        backend, target = self._bound()
        keys: Iterator[str] = backend.list(target, prefix)
        return keys

    def url(self, key: str, *, expires: int = 3600, method: str = "GET") -> str:
        """A URL that grants ``method`` on the object for ``expires`` seconds (presigned, SAS)."""
        backend, target = self._bound()
        found: str = backend.url(target, key, expires, method)
        return found

    # The same operations for async handlers (required on Workers, whose bindings are
    # async). A backend without the ``*_async`` method has the blocking one run in a
    # worker thread.

    async def put_async(
        self,
        key: str,
        data: Any,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """``put`` for async handlers; raises as ``put`` does."""
        backend, target, body, found_type = self._encoded(data)
        args = (target, key, body, content_type or found_type, metadata or _NO_ATTRIBUTES)
        put = getattr(backend, "put_async", None)
        await (_in_thread(backend.put, *args) if put is None else put(*args))

    async def get_async(self, key: str) -> bytes:
        """``get`` for async handlers. Raises ``ObjectNotFoundError`` when there is none."""
        backend, target = self._bound()
        get = getattr(backend, "get_async", None)
        data: bytes = await (
            _in_thread(backend.get, target, key) if get is None else get(target, key)
        )
        return data

    async def open_async(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """``open`` for async handlers: ``async for chunk in bucket.open_async(key)``.

        Raises ``ObjectNotFoundError`` (before the first chunk) when there is none.
        """
        backend, target = self._bound()
        opener = getattr(backend, "open_async", None)
        if opener is not None:
            async for chunk in opener(target, key, chunk_size):
                yield chunk
            return
        chunks = iter(await _in_thread(backend.open, target, key, chunk_size))
        while (chunk := await _in_thread(next, chunks, None)) is not None:
            yield chunk

    async def delete_async(self, key: str) -> None:
        """``delete`` for async handlers."""
        backend, target = self._bound()
        delete = getattr(backend, "delete_async", None)
        await (_in_thread(backend.delete, target, key) if delete is None else delete(target, key))

    async def list_async(self, prefix: str = "") -> AsyncIterator[str]:
        """``list`` for async handlers: ``async for key in bucket.list_async("t/")``."""
        backend, target = self._bound()
        lister = getattr(backend, "list_async", None)
        if lister is not None:
            async for key in lister(target, prefix):
                yield key
            return
        keys = iter(await _in_thread(backend.list, target, prefix))
        while (key := await _in_thread(next, keys, None)) is not None:
            yield key
