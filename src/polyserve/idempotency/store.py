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
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Record", "Status", "Store", "is_live"]


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
