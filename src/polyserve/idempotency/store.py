"""The record a store keeps per idempotency key, and the protocol every store implements.

A key moves through three states::

    (absent) --acquire--> IN_PROGRESS --complete--> COMPLETED --expires_at--> (expired)
                              |   \\--release--> (absent)
                              \\--lock_expires_at--> (expired: the next acquire takes it)

An expired record is treated exactly as an absent one. Liveness is always decided by
comparing ``expires_at`` / ``lock_expires_at`` with the ``now`` the caller passes, never by
a backend's own TTL feature, which stores may use for cleanup only.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable

_C = TypeVar("_C")

__all__ = ["LazyClient", "Record", "Status", "Store", "is_live"]


class Status(str, enum.Enum):
    """The state of a stored key."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Record:
    """What a store holds for one key.

    ``key`` is already namespaced by the decorator (``"<module>.<qualname>#<key>"``).
    ``token`` is the random owner token written by ``acquire``; it guards ``complete`` and
    ``release``. ``fingerprint`` is a hash of the payload, checked on every hit.
    Timestamps are epoch seconds from the decorator's clock. ``result`` is the serialised
    result of a COMPLETED record (``None`` while IN_PROGRESS).
    """

    key: str
    status: Status
    token: str
    fingerprint: str | None
    lock_expires_at: float
    expires_at: float
    result: bytes | None = None


def is_live(record: Record, now: float) -> bool:
    """True while ``record`` still holds its key at time ``now``.

    A COMPLETED record lives until ``expires_at``; an IN_PROGRESS one until its lock
    expires at ``lock_expires_at``. A record that is not live is treated as absent.
    """
    if record.status is Status.COMPLETED:
        return record.expires_at > now
    return record.lock_expires_at > now


@runtime_checkable
class Store(Protocol):
    """Where idempotency records live. Every method is one atomic operation.

    Stores map their client's errors to ``StoreUnavailableError`` (unreachable, timed
    out) or ``CorruptRecordError`` (a stored record that cannot be read back).
    """

    max_result_bytes: int
    """The largest serialised result ``complete`` accepts; the decorator checks it first."""

    def acquire(
        self,
        key: str,
        *,
        token: str,
        fingerprint: str | None,
        lock_expires_at: float,
        expires_at: float,
        now: float,
    ) -> Record | None:
        """Take ``key`` unless a live record holds it.

        Atomically: if no live record exists (absent, COMPLETED with ``expires_at <= now``
        or IN_PROGRESS with ``lock_expires_at <= now``), write IN_PROGRESS with ``token``
        and return ``None``: the caller owns the key. Otherwise write nothing and return
        the live record.
        """
        ...

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Mark ``key`` COMPLETED with ``result`` iff it is still IN_PROGRESS with ``token``.

        Returns ``False`` when the token no longer matches: the lock expired and another
        caller took the key over (or the record was cleaned up).
        """
        ...

    def release(self, key: str, *, token: str) -> bool:
        """Delete ``key`` iff it is still IN_PROGRESS with ``token`` (the handler raised)."""
        ...

    def get(self, key: str) -> Record | None:
        """The stored record, live or not, or ``None``. Used to wait for an in-flight result.

        A store may already have cleaned up a record that is no longer live.
        """
        ...

    def clear(self) -> None:
        """Remove every record of this store (its table, file or key prefix). For tests."""
        ...


class LazyClient(Generic[_C]):
    """A store's client, created on first use (once, even when threads race).

    A client passed in is used as is and never closed here; one this object
    created is closed by ``close()``. Stores use it so that constructing a store
    neither imports its client library nor opens a connection.
    """

    __slots__ = ("_client", "_factory", "_lock", "_owned")

    def __init__(self, factory: Callable[[], _C], client: _C | None = None) -> None:
        self._factory = factory
        self._client = client
        self._owned = client is None
        self._lock = threading.Lock()

    def get(self) -> _C:
        """The client, created by the factory on the first call."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    def close(self) -> None:
        """Close the client if this object created it; the next ``get`` creates a new one."""
        with self._lock:
            client = self._client
            if self._owned:
                self._client = None
        if self._owned and client is not None:
            client.close()  # type: ignore[attr-defined]  # every SDK client used here has close()
