"""``D1Store`` behind the blocking ``Store`` methods, for the shared store contract checks.

The checks call a store from threads and spawned processes, so this wrapper runs each
of ``D1Store``'s async methods to completion, against a ``FakeD1`` on a SQLite file (D1
runs SQLite). ``FakeD1``'s methods never suspend, so a coroutine finishes on its first
step and needs no event loop. The factory is picklable.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from polyserve_cloudflare.idempotency import D1Store
from polyserve_cloudflare.testing import FakeD1, FakeRuntime

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from polyserve.idempotency import Record

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("D1Store awaited something FakeD1 does not complete at once")


class BlockingD1Store:
    """The ``Store`` protocol over ``D1Store``'s async methods."""

    def __init__(self, path: str, table: str = "polyserve_idempotency") -> None:
        self.database = FakeD1(path)
        self.store = D1Store(
            env=SimpleNamespace(DB=self.database), table=table, runtime=FakeRuntime()
        )
        self.max_result_bytes = self.store.max_result_bytes

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
        return _run(
            self.store.acquire_async(
                key,
                token=token,
                fingerprint=fingerprint,
                lock_expires_at=lock_expires_at,
                expires_at=expires_at,
                now=now,
            )
        )

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        return _run(
            self.store.complete_async(key, token=token, result=result, expires_at=expires_at)
        )

    def release(self, key: str, *, token: str) -> bool:
        return _run(self.store.release_async(key, token=token))

    def get(self, key: str) -> Record | None:
        return _run(self.store.get_async(key))

    def clear(self) -> None:
        _run(self.store.clear_async())

    def close(self) -> None:
        self.database.close()


@dataclass(frozen=True, slots=True)
class BlockingD1StoreFactory:
    """Builds a ``BlockingD1Store`` on one SQLite file."""

    path: str

    def __call__(self) -> BlockingD1Store:
        return BlockingD1Store(self.path)
