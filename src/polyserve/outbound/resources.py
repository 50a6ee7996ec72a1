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
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    __slots__ = ("delays", "sleep")

    def __init__(
        self,
        name: str,
        *,
        target: str | None = None,
        backend: object | None = None,
        delays: Sequence[float] = (0.05, 0.2, 0.8),
        sleep: Callable[[float], None] = _sleep,
    ) -> None:
        super().__init__(name, target=target, backend=backend)
        self.delays = tuple(delays)
        self.sleep = sleep

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

    def _send_all(self, messages: list[Message], *, raise_partial: bool) -> list[str | Exception]:
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
        size = backend.max_batch(kind, target)
        results: list[str | Exception] = [None] * len(messages)  # type: ignore[list-item]
        pending = list(range(len(messages)))
        delays = self.delays
        attempt = 0
        while pending:
            retry: list[int] = []
            for start in range(0, len(pending), size):
                chunk = pending[start : start + size]
                try:
                    outcomes = backend.send(kind, target, [messages[i] for i in chunk])
                except PublishError as exc:  # the whole call failed: each of its messages did
                    outcomes = [exc] * len(chunk)
                for index, outcome in zip(chunk, outcomes, strict=True):
                    results[index] = outcome
                    if isinstance(outcome, TransientPublishError):
                        retry.append(index)
            if not retry or attempt >= len(delays):
                break
            self.sleep(delays[attempt])
            attempt += 1
            pending = retry
        if raise_partial:
            failures = [
                Failure(i, messages[i], r)
                for i, r in enumerate(results)
                if isinstance(r, Exception)
            ]
            if failures:
                raise BatchPublishError(self.name, failures, len(messages) - len(failures))
        return results


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
        backend: ObjectBackend
        backend, target = self._bound()
        body, found_type = encode_payload(data)
        limit = backend.max_bytes("bucket", target)
        if len(body) > limit:
            raise MessageTooLargeError(
                self.name, len(body), limit, backend.service("bucket", target)
            )
        backend.put(target, key, body, content_type or found_type, metadata or _NO_ATTRIBUTES)

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
