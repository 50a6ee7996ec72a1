"""Run a handler once per key, however often its event is delivered or its request retried.

``@idempotent`` (in ``decorator``) claims a key in a ``Store`` before the handler runs and
stores its result after; repeats get the stored result. Stores: ``MemoryStore`` (one
process), ``SQLiteStore`` (the processes of one host), ``RedisStore`` (any number of
hosts); cloud stores live in the provider packages.

Names are imported on first use, so importing this package loads neither ``redis`` nor
``sqlite3``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyserve.idempotency.decorator import REPLAYED_HEADER, idempotent
    from polyserve.idempotency.memory import MemoryStore
    from polyserve.idempotency.redis import RedisStore
    from polyserve.idempotency.sqlite import SQLiteStore
    from polyserve.idempotency.store import AsyncStore, Record, Status, Store, is_live

_EXPORTS: dict[str, str] = {
    "AsyncStore": "polyserve.idempotency.store",
    "MemoryStore": "polyserve.idempotency.memory",
    "REPLAYED_HEADER": "polyserve.idempotency.decorator",
    "Record": "polyserve.idempotency.store",
    "RedisStore": "polyserve.idempotency.redis",
    "SQLiteStore": "polyserve.idempotency.sqlite",
    "Status": "polyserve.idempotency.store",
    "Store": "polyserve.idempotency.store",
    "idempotent": "polyserve.idempotency.decorator",
    "is_live": "polyserve.idempotency.store",
}

__all__ = [
    "REPLAYED_HEADER",
    "AsyncStore",
    "MemoryStore",
    "Record",
    "RedisStore",
    "SQLiteStore",
    "Status",
    "Store",
    "idempotent",
    "is_live",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'polyserve.idempotency' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
