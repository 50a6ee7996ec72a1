"""Every store against the shared contract in ``polyserve_testkit.store_contract``.

Memory, SQLite and Redis here; the cloud stores run the same checks in their adapters.
MemoryStore lives in one process, so it races threads instead of processes.
"""

from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import redis
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from polyserve import CorruptRecordError, Message
from polyserve.idempotency import MemoryStore, RedisStore, SQLiteStore, Status, idempotent
from polyserve_testkit import store_contract as contract

if TYPE_CHECKING:
    from pathlib import Path

    from polyserve_testkit.servers import RedisServer

STORES = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)]
SHARED_STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.integration)]
# The worker processes import these once, in the fork server, instead of once each.
PRELOAD = ("sqlite3", "redis", "polyserve.idempotency.sqlite", "polyserve.idempotency.redis")


def _factory(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> contract.StoreFactory:
    if kind == "memory":
        return MemoryStore
    if kind == "sqlite":
        return functools.partial(SQLiteStore, tmp_path / "idempotency.db")
    server: RedisServer = request.getfixturevalue("redis_server")
    return functools.partial(RedisStore, server.url, prefix=f"test:{uuid.uuid4().hex}:")


@pytest.fixture(params=STORES)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> contract.StoreFactory:
    return _factory(request.param, request, tmp_path)


@pytest.fixture(params=SHARED_STORES)
def make_shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> contract.StoreFactory:
    return _factory(request.param, request, tmp_path)


def test_exactly_once_across_16_processes(
    make_shared_store: contract.StoreFactory, tmp_path: Path
) -> None:
    report = contract.check_exactly_once_across_processes(
        make_shared_store, n_procs=16, workdir=tmp_path, preload=PRELOAD
    )
    print(f"\n{report}")
    assert report.callers == 16
    assert report.executions == 1
    assert report.results + report.in_progress == 16
    assert report.in_progress > 0, "the race never overlapped"


def test_exactly_once_across_processes_that_wait(
    make_shared_store: contract.StoreFactory, tmp_path: Path
) -> None:
    report = contract.check_exactly_once_across_processes(
        make_shared_store, n_procs=8, workdir=tmp_path, wait=True, preload=PRELOAD
    )
    print(f"\n{report}")
    assert (report.executions, report.results, report.in_progress) == (1, 8, 0)


def test_exactly_once_across_threads(make_store: contract.StoreFactory, tmp_path: Path) -> None:
    report = contract.check_exactly_once_across_threads(make_store, n_threads=16, workdir=tmp_path)
    print(f"\n{report}")
    assert report.executions == 1
    assert report.results + report.in_progress == 16


def test_crash_recovery(make_shared_store: contract.StoreFactory, tmp_path: Path) -> None:
    contract.check_crash_recovery(make_shared_store, workdir=tmp_path, preload=PRELOAD)


def test_expiry(make_store: contract.StoreFactory) -> None:
    contract.check_expiry(make_store)


def test_mismatch(make_store: contract.StoreFactory) -> None:
    contract.check_mismatch(make_store)


def test_exception_cleanup(make_store: contract.StoreFactory) -> None:
    contract.check_exception_cleanup(make_store)


def test_lifecycle_matches_the_model(make_store: contract.StoreFactory) -> None:
    run_state_machine_as_test(
        contract.make_lifecycle_machine(make_store),
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None),
    )


@pytest.mark.integration
def test_redis_acquire_is_one_round_trip(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    store = RedisStore(client=client, prefix=f"rt:{uuid.uuid4().hex}:")
    commands: list[tuple[object, ...]] = []
    execute = client.execute_command

    def counting(*args: object, **options: object) -> object:
        commands.append(args)
        return execute(*args, **options)

    client.execute_command = counting  # type: ignore[method-assign]  # count what is sent
    assert store.acquire("k", token="a", fingerprint="f", lock_expires_at=10, expires_at=20,
                         now=1) is None  # fmt: skip
    assert store.complete("k", token="a", result=b"r", expires_at=20)
    commands.clear()
    found = store.acquire("k", token="b", fingerprint="f", lock_expires_at=10, expires_at=20, now=2)
    assert found is not None
    assert found.result == b"r"
    assert [c[0] for c in commands] == ["SET"], "a hit is one round trip"
    commands.clear()
    assert store.acquire("new", token="c", fingerprint=None, lock_expires_at=10, expires_at=20,
                         now=2) is None  # fmt: skip
    assert [c[0] for c in commands] == ["SET"], "taking a free key is one round trip"
    commands.clear()
    assert store.acquire("k", token="d", fingerprint=None, lock_expires_at=40, expires_at=50,
                         now=30) is None  # fmt: skip
    assert [c[0] for c in commands] == ["SET", "EVALSHA"], "an expired record is replaced"
    record = store.get("k")
    assert record is not None
    assert (record.token, record.status) == ("d", Status.IN_PROGRESS)
    client.close()


@pytest.mark.integration
def test_redis_before_7_gets_the_script(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    store = RedisStore(client=client, prefix=f"old:{uuid.uuid4().hex}:")
    commands: list[object] = []
    execute = client.execute_command

    def like_redis_6(*args: object, **options: object) -> object:
        commands.append(args[0])
        if args[0] == "SET" and "GET" in args and "NX" in args:
            raise redis.ResponseError("syntax error")
        return execute(*args, **options)

    client.execute_command = like_redis_6  # type: ignore[method-assign]  # an older server
    for token in ("a", "b"):
        found = store.acquire("k", token=token, fingerprint=None, lock_expires_at=10,
                              expires_at=20, now=1)  # fmt: skip
        assert (found is None) == (token == "a")
    assert commands == ["SET", "EVALSHA", "EVALSHA"]
    client.close()


@pytest.mark.integration
def test_redis_falls_back_to_eval_after_a_script_flush(redis_server: RedisServer) -> None:
    from polyserve.idempotency.redis import _COMPLETE, _COMPLETE_WRITTEN

    prefix = f"flush:{uuid.uuid4().hex}:"
    store, other = (
        RedisStore(redis_server.url, prefix=prefix),
        RedisStore(redis_server.url, prefix=prefix),
    )
    for key in ("mine", "theirs"):
        assert store.acquire(key, token=key, fingerprint=None, lock_expires_at=10,
                             expires_at=20, now=1) is None  # fmt: skip
    client: Any = redis.Redis.from_url(redis_server.url)
    client.script_flush()
    # The store that took "mine" completes it with what it wrote; another client only has
    # the token and runs the parsing script. Both scripts were flushed, so both go to EVAL.
    assert store.complete("mine", token="mine", result=b"r1", expires_at=20)
    assert other.complete("theirs", token="theirs", result=b"r2", expires_at=20)
    assert client.script_exists(_COMPLETE_WRITTEN.sha, _COMPLETE.sha) == [True, True]
    for key, result in (("mine", b"r1"), ("theirs", b"r2")):
        record = other.get(key)
        assert record is not None
        assert (record.status, record.result) == (Status.COMPLETED, result)
    client.close()
    store.close()
    other.close()


@pytest.mark.integration
def test_redis_complete_and_release_check_the_owner_either_way(redis_server: RedisServer) -> None:
    prefix = f"owner:{uuid.uuid4().hex}:"
    store, other = (
        RedisStore(redis_server.url, prefix=prefix),
        RedisStore(redis_server.url, prefix=prefix),
    )
    assert store.acquire("k", token="a", fingerprint="f", lock_expires_at=10, expires_at=20,
                         now=1) is None  # fmt: skip
    # The lock expires and another caller takes the key over.
    assert other.acquire("k", token="b", fingerprint="f", lock_expires_at=30, expires_at=40,
                         now=15) is None  # fmt: skip
    assert not store.complete("k", token="a", result=b"late", expires_at=20)
    assert not store.release("k", token="a")
    assert not other.complete("k", token="a", result=b"late", expires_at=20)
    record = store.get("k")
    assert record is not None
    assert (record.token, record.status) == ("b", Status.IN_PROGRESS)
    assert store.release("k", token="b"), "the parsing script releases for any client"
    assert store.get("k") is None
    store.close()
    other.close()


@pytest.mark.integration
def test_redis_cleanup_expiry_never_precedes_the_record(redis_server: RedisServer) -> None:
    prefix = f"ttl:{uuid.uuid4().hex}:"
    store = RedisStore(redis_server.url, prefix=prefix)
    client = redis.Redis.from_url(redis_server.url)
    # A caller whose clock is far behind the server's must not make Redis drop its record.
    assert store.acquire("k", token="a", fingerprint=None, lock_expires_at=30, expires_at=3600,
                         now=0) is None  # fmt: skip
    assert 29_000 <= client.pttl(prefix + "k") <= 30_001
    assert store.complete("k", token="a", result=b"r", expires_at=3600)
    assert 3_599_000 <= client.pttl(prefix + "k") <= 3_600_000
    client.close()
    store.close()


@pytest.mark.integration
def test_redis_key_of_another_type_is_corrupt(redis_server: RedisServer) -> None:
    prefix = f"wrong:{uuid.uuid4().hex}:"
    store = RedisStore(redis_server.url, prefix=prefix)

    @idempotent(store)
    def handle(message: Message) -> None:
        raise AssertionError("must not run")

    client = redis.Redis.from_url(redis_server.url)
    client.rpush(prefix + contract.namespaced(handle, "m"), "a list, not a record")
    with pytest.raises(CorruptRecordError):
        handle(Message("m"))
    client.close()
    store.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    "value", [b"not a record", b"completed\nsoon\nlater\n1\ntoken\n\n=r", b"\xff\n" * 7]
)
def test_redis_unreadable_record_is_corrupt_never_overwritten(
    redis_server: RedisServer, value: bytes
) -> None:
    prefix = f"garbled:{uuid.uuid4().hex}:"
    store = RedisStore(redis_server.url, prefix=prefix)
    client = redis.Redis.from_url(redis_server.url)
    client.set(prefix + "k", value)
    with pytest.raises(CorruptRecordError):
        store.acquire("k", token="t", fingerprint=None, lock_expires_at=10, expires_at=10, now=5)
    assert client.get(prefix + "k") == value
    client.close()
    store.close()


@pytest.mark.integration
def test_redis_clear_removes_only_its_prefix(redis_server: RedisServer) -> None:
    mine = RedisStore(redis_server.url, prefix=f"mine[{uuid.uuid4().hex}]*:")
    theirs = RedisStore(redis_server.url, prefix=f"theirs:{uuid.uuid4().hex}:")
    for store in (mine, theirs):
        assert store.acquire("k", token="a", fingerprint=None, lock_expires_at=10,
                             expires_at=20, now=1) is None  # fmt: skip
    mine.clear()
    assert mine.get("k") is None
    assert theirs.get("k") is not None
    mine.close()
    theirs.close()


# These use several store instances on one backend, so they need a shared one.
def test_one_caller_takes_over_a_dead_record(make_shared_store: contract.StoreFactory) -> None:
    contract.check_single_takeover(make_shared_store)


def test_stale_owner_cannot_complete_or_release(make_shared_store: contract.StoreFactory) -> None:
    contract.check_stale_owner(make_shared_store)
