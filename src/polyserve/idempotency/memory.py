"""An in-process store: a dict behind a lock."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TypeGuard

from polyserve.idempotency.store import Record, Status, is_live

__all__ = ["MemoryStore"]

# Dead records are swept whenever the store has doubled since the last sweep (and holds at
# least this many), so a long-lived process that sees a stream of unique keys does not grow
# without bound, at a constant cost per acquire on average.
_SWEEP_AT_LEAST = 1024


class MemoryStore:
    """Records in this process's memory. Thread-safe; the default when no store is given.

    It protects against repeats within one process only: a retry that lands on another
    instance, or after a restart, runs again. Use ``SQLiteStore`` across processes on one
    host and ``RedisStore`` (or a cloud store) across hosts.

    Args:
        max_result_bytes: the largest serialised result stored.
    """

    def __init__(self, *, max_result_bytes: int = 1024 * 1024) -> None:
        self.max_result_bytes = max_result_bytes
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()
        self._sweep_at = _SWEEP_AT_LEAST

    def __repr__(self) -> str:
        return f"MemoryStore(records={len(self._records)})"

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
        """Take ``key`` unless a live record holds it (see ``Store.acquire``)."""
        with self._lock:
            if len(self._records) >= self._sweep_at:
                self._sweep(now)
            existing = self._records.get(key)
            if existing is not None and is_live(existing, now):
                return existing
            self._records[key] = Record(
                key, Status.IN_PROGRESS, token, fingerprint, lock_expires_at, expires_at
            )
            return None

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Store ``result`` iff ``key`` is IN_PROGRESS with ``token`` (see ``Store.complete``)."""
        with self._lock:
            existing = self._records.get(key)
            if not _owned(existing, token):
                return False
            self._records[key] = replace(
                existing, status=Status.COMPLETED, result=bytes(result), expires_at=expires_at
            )
            return True

    def release(self, key: str, *, token: str) -> bool:
        """Delete ``key`` iff it is IN_PROGRESS with ``token`` (see ``Store.release``)."""
        with self._lock:
            if not _owned(self._records.get(key), token):
                return False
            del self._records[key]
            return True

    def get(self, key: str) -> Record | None:
        """The stored record, live or not, or ``None``."""
        with self._lock:
            return self._records.get(key)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()

    def _sweep(self, now: float) -> None:
        dead = [k for k, r in self._records.items() if not is_live(r, now)]
        for k in dead:
            del self._records[k]
        self._sweep_at = max(_SWEEP_AT_LEAST, 2 * len(self._records))


def _owned(record: Record | None, token: str) -> TypeGuard[Record]:
    return record is not None and record.status is Status.IN_PROGRESS and record.token == token
