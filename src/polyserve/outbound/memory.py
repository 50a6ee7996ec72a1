"""An in-process backend for tests and local runs: it keeps what was sent and tells listeners.

The local server subscribes a consumer with ``listen`` so that a message one handler
sends triggers the handler registered for the same logical name; tests read ``sent``.
"""

from __future__ import annotations

import threading

from polyserve.outbound.errors import ObjectNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from polyserve.events.queue import Message as ReceivedMessage
    from polyserve.outbound.message import Message

    Listener = Callable[[str, str, Message], None]

__all__ = ["MemoryBackend", "StoredObject", "as_received", "memory_in_use"]


def memory_in_use() -> MemoryBackend | None:
    """The memory backend local runs and tests send to: the one in use, or a new one
    (then configured) when neither ``configure`` nor ``POLYSERVE_OUTBOUND`` chose a
    backend; ``None`` when another backend was chosen.
    """
    import os

    from polyserve.errors import ConfigurationError
    from polyserve.outbound.backend import configure, resolve_backend

    if os.environ.get("POLYSERVE_OUTBOUND", "memory") != "memory":
        return None
    try:
        backend = resolve_backend()
    except ConfigurationError:
        backend = MemoryBackend()
        configure(backend)
    return backend if isinstance(backend, MemoryBackend) else None


def as_received(
    message: Message,
    *,
    id: str,
    source: str,
    attempt: int = 1,
    enqueued_at: dt.datetime | None = None,
) -> ReceivedMessage:
    """``message`` as a consumer of ``source`` receives it: the body, the attributes with
    the content type and trace headers the clouds carry, the key as ``group_key``."""
    from polyserve.events.queue import Message as Received

    return Received(
        id=id,
        body=message.body,
        attributes=message.headers(),
        attempt=attempt,
        enqueued_at=enqueued_at,
        source=source,
        group_key=message.key,
    )


class StoredObject:
    """An object kept by ``MemoryBackend``."""

    __slots__ = ("content_type", "data", "metadata")

    def __init__(self, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        self.data = data
        self.content_type = content_type
        self.metadata = dict(metadata)


class MemoryBackend:
    """Queues, topics and buckets in memory, with the limits of the cloud they stand for.

    ``sent[(kind, name)]`` lists the messages sent, in order (kind is ``"queue"`` or
    ``"topic"``); ``objects[(bucket, key)]`` holds stored objects. ``max_message_bytes``
    defaults to 256 KiB, the smallest of the clouds' limits, so that what passes
    here passes everywhere.
    """

    needs_target = False

    def __init__(
        self,
        *,
        max_message_bytes: int = 256 * 1024,
        max_object_bytes: int = 5 * 1024**3,
        max_batch: int = 10,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_object_bytes = max_object_bytes
        self.batch_size = max_batch
        self.sent: dict[tuple[str, str], list[Message]] = {}
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._count = 0

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, name, message)`` after each message is kept; returns a
        function that stops it. The local server delivers to consumers this way."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def messages(self, name: str, kind: str = "queue") -> list[Message]:
        """The messages sent to ``name``, in order."""
        return list(self.sent.get((kind, name), ()))

    def received(self, name: str, kind: str = "queue") -> list[ReceivedMessage]:
        """The messages sent to ``name`` as its consumer receives them (see ``as_received``)."""
        return [
            as_received(m, id=f"{name}-{i}", source=name)
            for i, m in enumerate(self.messages(name, kind), 1)
        ]

    def clear(self) -> None:
        """Forget everything sent and stored."""
        with self._lock:
            self.sent.clear()
            self.objects.clear()

    # MessageBackend

    def service(self, kind: str, target: str) -> str:
        return "memory"

    def max_bytes(self, kind: str, target: str) -> int:
        return self.max_object_bytes if kind == "bucket" else self.max_message_bytes

    def max_batch(self, kind: str, target: str) -> int:
        return self.batch_size

    def send(self, kind: str, target: str, messages: Sequence[Message]) -> list[str | Exception]:
        ids: list[str | Exception] = []
        with self._lock:
            kept = self.sent.setdefault((kind, target), [])
            for message in messages:
                self._count += 1
                kept.append(message)
                ids.append(str(self._count))
        for message in messages:
            for listener in tuple(self._listeners):
                listener(kind, target, message)
        return ids

    # ObjectBackend

    def put(
        self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        with self._lock:
            self.objects[(target, key)] = StoredObject(data, content_type, metadata)

    def get(self, target: str, key: str) -> bytes:
        found = self.objects.get((target, key))
        if found is None:
            raise ObjectNotFoundError(f"no object {key!r} in bucket {target!r}")
        return found.data

    def open(self, target: str, key: str, chunk_size: int) -> Iterator[bytes]:
        data = self.get(target, key)
        return (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))

    def delete(self, target: str, key: str) -> None:
        with self._lock:
            self.objects.pop((target, key), None)

    def list(self, target: str, prefix: str) -> Iterator[str]:
        keys = sorted(k for b, k in list(self.objects) if b == target and k.startswith(prefix))
        return iter(keys)

    def url(self, target: str, key: str, expires: int, method: str) -> str:
        from urllib.parse import quote

        return f"memory://{quote(target)}/{quote(key)}?method={method}&expires={expires}"
