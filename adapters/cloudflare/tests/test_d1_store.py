"""D1Store: the shared store contract over SQLite through a D1-shaped binding, and the
async ``@idempotent`` path that awaits it.

D1 runs SQLite, so the contract (threads, spawned processes, crash recovery, the
lifecycle model) runs against ``FakeD1`` on a SQLite file; test_miniflare.py runs the
store against Miniflare's real D1 inside Pyodide.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from adapters.cloudflare.tests.d1_blocking import BlockingD1StoreFactory

from polyserve.errors import (
    ConfigurationError,
    CorruptRecordError,
    InProgressError,
    PayloadMismatchError,
    StoreUnavailableError,
)
from polyserve.idempotency import Status, idempotent
from polyserve_cloudflare.idempotency import D1Store
from polyserve_cloudflare.testing import FakeD1, FakeRuntime
from polyserve_testkit.store_contract import StoreContract, StoreFactory

if TYPE_CHECKING:
    from pathlib import Path

NOW = 1_700_000_000.0


class TestD1StoreContract(StoreContract):
    """The shared store contract, on a SQLite file through ``FakeD1``."""

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return BlockingD1StoreFactory(str(tmp_path / "d1.sqlite"))


def store_on(db: Any, **options: Any) -> D1Store:
    return D1Store(env=SimpleNamespace(DB=db), runtime=FakeRuntime(), **options)


def test_an_async_handler_runs_once_per_key_and_replays() -> None:
    store = store_on(FakeD1())
    runs: list[str] = []

    @idempotent(store, key="order.id", clock=lambda: NOW)
    async def charge(order: dict[str, Any]) -> dict[str, Any]:
        runs.append(order["id"])
        return {"charged": order["id"]}

    async def scenario() -> list[Any]:
        return [
            await charge({"id": "o1", "amount": 5}),
            await charge({"id": "o1", "amount": 5}),
            await charge({"id": "o2", "amount": 5}),
        ]

    assert asyncio.run(scenario()) == [{"charged": "o1"}, {"charged": "o1"}, {"charged": "o2"}]
    assert runs == ["o1", "o2"]
    with pytest.raises(PayloadMismatchError):
        asyncio.run(charge({"id": "o1", "amount": 6}))
    record = asyncio.run(store.get_async(f"{charge.__module__}.{charge.__qualname__}#o1"))
    assert record is not None
    assert record.status is Status.COMPLETED


def test_a_raising_handler_releases_and_an_in_flight_key_is_refused_or_awaited() -> None:
    store = store_on(FakeD1())
    calls: list[int] = []

    @idempotent(store, key="event.id")
    async def fails(event: dict[str, Any]) -> None:
        calls.append(1)
        raise RuntimeError("boom")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            asyncio.run(fails({"id": "k"}))
    assert calls == [1, 1]  # released: the second call ran again

    gate: dict[str, asyncio.Event] = {}

    @idempotent(store, key="event.id", lock_timeout=5)
    async def slow(event: dict[str, Any]) -> str:
        await gate["go"].wait()
        return "done"

    waited: list[int] = []

    @idempotent(store, key="event.id", lock_timeout=5, wait=True)
    async def waits(event: dict[str, Any]) -> str:
        waited.append(1)
        await gate["go"].wait()
        return "done"

    async def race() -> tuple[str, str]:
        gate["go"] = asyncio.Event()
        first = asyncio.create_task(slow({"id": "s"}))
        await asyncio.sleep(0.01)
        with pytest.raises(InProgressError):
            await slow({"id": "s"})
        gate["go"].set()
        return await first, await slow({"id": "s"})

    assert asyncio.run(race()) == ("done", "done")

    async def wait_for_the_holder() -> tuple[str, str]:
        gate["go"] = asyncio.Event()
        holder = asyncio.create_task(waits({"id": "w"}))
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(waits({"id": "w"}))
        await asyncio.sleep(0.05)
        gate["go"].set()
        return await holder, await waiter

    assert asyncio.run(wait_for_the_holder()) == ("done", "done")
    assert waited == [1]


def test_a_sync_function_cannot_use_it() -> None:
    with pytest.raises(ConfigurationError, match="async def"):

        @idempotent(store_on(FakeD1()))
        def handler(event: dict[str, Any]) -> None: ...

    with pytest.raises(ConfigurationError, match="asynchronous"):
        store_on(FakeD1()).get("k")


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="plain SQL identifier"):
        D1Store(table="x; DROP TABLE y")
    with pytest.raises(ConfigurationError, match=r"1\.\.1000000"):
        D1Store(max_result_bytes=2_000_000)
    missing = D1Store("NOPE", env=SimpleNamespace(), runtime=FakeRuntime())
    with pytest.raises(ConfigurationError, match="d1_databases"):
        asyncio.run(missing.get_async("k"))


def test_d1_errors_are_store_unavailable() -> None:
    class Failing(FakeD1):
        def execute(self, sql: str, values: Any) -> list[Any]:
            raise RuntimeError("D1_ERROR: Network connection lost.")

    with pytest.raises(StoreUnavailableError, match="Network connection lost"):
        asyncio.run(store_on(Failing()).get_async("k"))


def test_corrupt_rows_are_reported() -> None:
    db = FakeD1()
    store = store_on(db)
    asyncio.run(store.clear_async())
    db.execute(
        "INSERT INTO polyserve_idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
        ["k", "completed", "t", "", NOW, NOW, "not base64!"],
    )
    with pytest.raises(CorruptRecordError, match="'k'"):
        asyncio.run(store.get_async("k"))
