from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import redis

from polyserve import CorruptRecordError, StoreUnavailableError
from polyserve.idempotency import MemoryStore, RedisStore, SQLiteStore, Status, Store
from polyserve.idempotency.store import ttl_offset

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _take(store: Store, key: str, now: float, *, lock: float = 10.0) -> None:
    assert store.acquire(key, token="t", fingerprint=None, lock_expires_at=now + lock,
                         expires_at=now + 100, now=now) is None  # fmt: skip


def test_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    sqlite_store = SQLiteStore(tmp_path / "db")
    stores: list[object] = [MemoryStore(), sqlite_store, RedisStore("redis://127.0.0.1:1")]
    assert all(isinstance(store, Store) for store in stores)
    sqlite_store.close()


def test_memory_store_sweeps_dead_records() -> None:
    store = MemoryStore()
    for i in range(1024):
        _take(store, f"k{i}", 0.0, lock=1.0 if i % 2 else 100.0)
    assert store.get("k1") is not None, "dead records are kept until the store doubles"
    _take(store, "last", 5.0)
    assert store.get("k1") is None
    assert store.get("k0") is not None
    assert store.get("last") is not None
    assert len(store._records) == 513


def test_sqlite_store_is_shared_by_connections(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "db"), SQLiteStore(tmp_path / "db")
    _take(first, "k", 0.0)
    found = second.acquire("k", token="other", fingerprint=None, lock_expires_at=10,
                           expires_at=100, now=1)  # fmt: skip
    assert found is not None
    assert found.token == "t"
    assert second.complete("k", token="t", result=b"r", expires_at=100)
    record = first.get("k")
    assert record is not None
    assert record.status is Status.COMPLETED
    assert record.result == b"r"
    with sqlite3.connect(tmp_path / "db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()
    first.close()
    second.close()


def test_sqlite_store_purges_dead_records(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    _take(store, "dead-lock", 0.0, lock=1.0)
    _take(store, "live-lock", 0.0, lock=50.0)
    _take(store, "expired", 0.0)
    assert store.complete("expired", token="t", result=b"", expires_at=2.0)
    assert store.purge(now=5.0) == 2
    assert store.get("live-lock") is not None
    assert store.get("dead-lock") is None
    store.close()


def test_sqlite_store_reports_corrupt_rows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    _take(store, "k", 0.0)
    with sqlite3.connect(tmp_path / "db") as db:
        db.execute("UPDATE polyserve_idempotency SET status = 'exploded'")
    db.close()
    with pytest.raises(CorruptRecordError):
        store.acquire("k", token="t2", fingerprint=None, lock_expires_at=10, expires_at=10,
                      now=1000)  # fmt: skip
    with pytest.raises(CorruptRecordError):
        store.get("k")
    store.close()


def test_sqlite_store_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_bytes(b"this is not a database" * 100)
    store = SQLiteStore(path)
    with pytest.raises(CorruptRecordError):
        store.get("k")
    store.close()


def test_sqlite_store_that_cannot_open_its_file_is_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "missing-dir" / "db")
    with pytest.raises(StoreUnavailableError):
        store.get("k")


def test_sqlite_store_refuses_odd_table_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="identifier"):
        SQLiteStore(tmp_path / "db", table="x; DROP TABLE y")


def test_redis_store_needs_exactly_one_target() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RedisStore()
    with pytest.raises(ValueError, match="exactly one"):
        RedisStore("redis://x", client=redis.Redis())


def test_redis_store_refuses_a_decoding_client() -> None:
    decoding: Any = redis.Redis(decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client=decoding)


@pytest.mark.parametrize("method", ["get", "clear", "acquire", "complete", "release"])
def test_redis_store_on_a_closed_port_is_unavailable(method: str) -> None:
    store = RedisStore("redis://127.0.0.1:1/0", socket_timeout=1.0)
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: store.get("k"),
        "clear": store.clear,
        "acquire": lambda: store.acquire(
            "k", token="t", fingerprint=None, lock_expires_at=1, expires_at=1, now=0
        ),
        "complete": lambda: store.complete("k", token="t", result=b"", expires_at=1),
        "release": lambda: store.release("k", token="t"),
    }
    with pytest.raises(StoreUnavailableError):
        calls[method]()
    store.close()


def test_importing_the_package_loads_neither_redis_nor_pydantic() -> None:
    code = (
        "import sys\n"
        "import polyserve.idempotency as idem\n"
        "from polyserve.idempotency import idempotent, MemoryStore, RedisStore, SQLiteStore\n"
        "RedisStore('redis://127.0.0.1:1')\n"
        "@idempotent()\n"
        "def f(x: int) -> int:\n"
        "    return x\n"
        "f(1)\n"
        "print(sorted(m for m in ('redis', 'pydantic') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_ttl_offset_rounds_up_from_the_callers_clock_to_this_hosts() -> None:
    assert ttl_offset(100.25, host_time=400.0) == 300  # 299.75 s, rounded up
    assert ttl_offset(500.0, host_time=400.0) == -100  # a caller whose clock runs ahead
    assert ttl_offset(time.time() - 60) in (60, 61)
