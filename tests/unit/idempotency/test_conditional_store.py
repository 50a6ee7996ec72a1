"""ConditionalStore's loops, checks and error translation, on an in-process table.

The cloud stores run on it against real servers (in their adapters' tests); here a small
table with versioned, conditional writes drives the paths those servers rarely take: a
record released or replaced between two requests, a key fought over without end, the
client's own errors, and both kinds of store (versioned, and conditions on the record).
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from polyserve.errors import (
    ConfigurationError,
    CorruptRecordError,
    MissingDependencyError,
    RecordTooLargeError,
    StoreUnavailableError,
)
from polyserve.idempotency.store import ConditionalStore, Failure, Record, Status, Store
from polyserve_testkit import store_contract as contract

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

NOW = 1_700_000_000.0
# When a caller acquires after the first owner's 30-second lock has expired.
LATER = NOW + 60


class Conflict(Exception):
    """The table's answer to a write whose condition failed."""


class Missing(Exception):
    """The table's answer to a write on a row that does not exist."""


class Down(Exception):
    """The table cannot be reached."""


class TooBig(Exception):
    """The row would be over the table's size limit."""


class Table:
    """Rows with a version each, changed only by conditional writes, one at a time.

    ``calls`` lists the requests made. By request name, ``before`` holds functions to run
    before the next ones (to play another writer) and ``faults`` errors they raise instead.
    """

    def __init__(self) -> None:
        self.rows: dict[str, tuple[dict[str, Any], int]] = {}
        self.calls: list[str] = []
        self.before: dict[str, list[Callable[[], object]]] = {}
        self.faults: dict[str, list[Exception]] = {}
        self.closed = False
        self._versions = itertools.count(1)
        self._lock = threading.RLock()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        pending = self.before.get(name)
        if pending:
            pending.pop(0)()
        faults = self.faults.get(name)
        if faults:
            raise faults.pop(0)

    def read(self, key: str) -> tuple[dict[str, Any], int] | None:
        with self._lock:
            self._call("read")
            row = self.rows.get(key)
            return None if row is None else (dict(row[0]), row[1])

    def write(
        self,
        key: str,
        fields: dict[str, Any] | None,
        *,
        version: int | None = None,
        test: Callable[[dict[str, Any] | None], bool] | None = None,
        merge: bool = False,
        name: str = "write",
    ) -> int:
        """Write ``fields`` (or delete the row, for None) and return the new version.

        With ``version``, the row must exist at that version; with ``test``, the row (or
        None) must pass it; with neither, the row must not exist. ``merge`` keeps the
        fields that ``fields`` does not name.
        """
        with self._lock:
            self._call(name)
            row = self.rows.get(key)
            if version is not None:
                if row is None:
                    raise Missing(key)
                if row[1] != version:
                    raise Conflict(key)
            elif test is not None:
                if not test(None if row is None else row[0]):
                    raise Conflict(key)
            elif row is not None:
                raise Conflict(key)
            if fields is None:
                self.rows.pop(key, None)
                return 0
            if len(fields.get("result") or b"") > 2048:
                raise TooBig(key)
            written = next(self._versions)
            self.rows[key] = ({**row[0], **fields} if merge and row else fields, written)
            return written

    def close(self) -> None:
        self.closed = True


def _fields(record: Record) -> dict[str, Any]:
    fields = asdict(record)
    fields["status"] = record.status.value
    return fields


class TableStore(ConditionalStore[Table, int]):
    """A versioned store on ``Table``: every write names the version it read."""

    backend: ClassVar[str] = "Table"
    record_noun: ClassVar[str] = "row"
    result_limit: ClassVar[int] = 4096
    requires: ClassVar[str] = "table-sdk"
    extra: ClassVar[str | None] = "polyserve-table[sdk]"

    def __init__(self, table: Table | None = None, *, max_result_bytes: int = 1024) -> None:
        super().__init__("rows", client=table, max_result_bytes=max_result_bytes)
        self.made: list[Table] = []
        self.importable = True

    def _new_client(self) -> Table:
        if not self.importable:
            raise ImportError("No module named 'table_sdk'")
        self.made.append(Table())
        return self.made[-1]

    def _failure(self, exc: Exception) -> Failure | None:
        kinds = {
            Conflict: Failure.CONFLICT,
            Missing: Failure.NOT_FOUND,
            TooBig: Failure.TOO_LARGE,
            Down: Failure.UNAVAILABLE,
        }
        return kinds.get(type(exc))

    def _fields(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        return item

    def _read(self, key: str) -> tuple[Any, int] | None:
        return self.client.read(key)

    def _insert(self, record: Record, now: float) -> int | None:
        return self.client.write(record.key, _fields(record), name="insert")

    def _replace(self, record: Record, version: int, now: float) -> int | None:
        return self.client.write(record.key, _fields(record), version=version, name="replace")

    def _complete(
        self, key: str, token: str, version: int, result: bytes, expires_at: float
    ) -> None:
        changes = {"status": "completed", "result": result, "expires_at": expires_at}
        self.client.write(key, changes, version=version, merge=True, name="update")

    def _delete(self, key: str, token: str, version: int) -> bool:
        self.client.write(key, None, version=version, name="delete")
        return True

    def clear(self) -> None:
        with self._errors():
            self.client.rows.clear()


def _dead_at(now: float) -> Callable[[dict[str, Any] | None], bool]:
    def test(row: dict[str, Any] | None) -> bool:
        if row is None:
            return True
        if row["status"] == "completed":
            return bool(row["expires_at"] <= now)
        return bool(row["lock_expires_at"] <= now)

    return test


def _owned_by(token: str) -> Callable[[dict[str, Any] | None], bool]:
    return lambda row: row is not None and row["status"] == "in_progress" and row["token"] == token


class ConditionTableStore(TableStore):
    """An unversioned store on ``Table``: every write tests the row itself."""

    versioned: ClassVar[bool] = False

    def _read(self, key: str) -> tuple[Any, Any] | None:
        found = self.client.read(key)
        return None if found is None else (found[0], None)

    def _insert(self, record: Record, now: float) -> None:
        self.client.write(record.key, _fields(record), test=_dead_at(now), name="insert")

    def _complete(
        self, key: str, token: str, version: Any, result: bytes, expires_at: float
    ) -> None:
        changes = {"status": "completed", "result": result, "expires_at": expires_at}
        self.client.write(key, changes, test=_owned_by(token), merge=True, name="update")

    def _delete(self, key: str, token: str, version: Any) -> bool:
        self.client.write(key, None, test=_owned_by(token), name="delete")
        return True


class HolderTableStore(ConditionTableStore):
    """An unversioned store whose failed insert reports the row that holds the key."""

    def _holder(self, conflict: Exception) -> tuple[Any, Any] | None:
        row = self.client.rows.get(str(conflict))
        return None if row is None else (dict(row[0]), None)


KINDS = {"versioned": TableStore, "conditions": ConditionTableStore}


@pytest.fixture(params=sorted(KINDS))
def make_store(request: pytest.FixtureRequest) -> contract.StoreFactory:
    """Stores of one kind, all on one table."""
    return functools.partial(KINDS[request.param], Table())


@pytest.fixture
def table() -> Table:
    return Table()


@pytest.fixture
def store(table: Table) -> Iterator[TableStore]:
    store = TableStore(table)
    yield store
    store.close()


def take(store: Store, key: str = "f#k", *, token: str = "t", at: float = NOW) -> Record | None:
    """Acquire ``key`` at time ``at``, with a 30-second lock and a result kept until NOW + 600."""
    return store.acquire(
        key, token=token, fingerprint="fp", lock_expires_at=at + 30, expires_at=NOW + 600, now=at
    )


# The contract, raced with threads.


def test_stores_satisfy_the_protocol(make_store: contract.StoreFactory) -> None:
    assert isinstance(make_store(), Store)


def test_one_of_many_threads_runs_the_handler(
    make_store: contract.StoreFactory, tmp_path: Path
) -> None:
    report = contract.check_exactly_once_across_threads(make_store, n_threads=16, workdir=tmp_path)

    assert (report.callers, report.executions) == (16, 1)
    assert report.results + report.in_progress == 16


@pytest.mark.parametrize(
    "check",
    [
        contract.check_expiry,
        contract.check_mismatch,
        contract.check_exception_cleanup,
        contract.check_single_takeover,
        contract.check_stale_owner,
    ],
)
def test_contract(
    make_store: contract.StoreFactory, check: Callable[[contract.StoreFactory], None]
) -> None:
    check(make_store)


def test_store_follows_the_record_lifecycle_model(make_store: contract.StoreFactory) -> None:
    run_state_machine_as_test(
        contract.make_lifecycle_machine(make_store),
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# Round trips.


def test_versioned_round_trips(table: Table, store: TableStore) -> None:
    other = TableStore(table)

    assert take(store) is None
    assert take(other, token="u") == _record("t")
    # The version acquire() wrote saves complete() its read.
    assert store.complete("f#k", token="t", result=b"42", expires_at=NOW + 600)
    assert take(other, "g#k", token="u") is None
    # A store that did not write the record reads it first.
    assert store.release("g#k", token="u")

    assert table.calls == ["insert", "insert", "read", "update", "insert", "read", "delete"]


def test_versioned_takeover_of_a_dead_record_is_one_more_write(
    table: Table, store: TableStore
) -> None:
    assert take(store) is None

    assert take(store, token="u", at=LATER) is None

    assert table.calls == ["insert", "insert", "read", "replace"]
    assert table.rows["f#k"][0]["token"] == "u"
    assert store.complete("f#k", token="u", result=b"", expires_at=NOW + 600)
    assert table.calls[-1] == "update"


def test_unversioned_writes_never_read_first(table: Table) -> None:
    store = ConditionTableStore(table)
    assert take(store) is None
    assert take(store, token="u") is not None

    assert not store.complete("f#k", token="u", result=b"", expires_at=NOW + 600)
    assert not store.release("f#k", token="u")
    assert store.complete("f#k", token="t", result=b"42", expires_at=NOW + 600)

    assert table.calls == ["insert", "insert", "read", "update", "delete", "update"]


def test_unversioned_insert_takes_over_a_dead_record_itself(table: Table) -> None:
    store = ConditionTableStore(table)
    assert take(store) is None

    assert take(store, token="u", at=LATER) is None

    assert table.calls == ["insert", "insert"]


def test_unversioned_record_dead_by_the_read_is_taken_by_the_next_insert(table: Table) -> None:
    store = ConditionTableStore(table)
    assert take(store) is None
    # Between the failed insert and the read, the owner completes with a result that is
    # already expired.
    done = _record("t", status=Status.COMPLETED, result=b"", expires_at=NOW)
    table.before["read"] = [lambda: table.rows.update({"f#k": (_fields(done), 0)})]

    assert take(store, token="u") is None

    assert table.calls == ["insert", "insert", "read", "insert"]
    assert table.rows["f#k"][0]["token"] == "u"


def test_holder_from_the_failed_insert_saves_the_read(table: Table) -> None:
    store = HolderTableStore(table)
    assert take(store) is None

    found = take(store, token="u")

    assert found is not None
    assert found.token == "t"
    assert table.calls == ["insert", "insert"]


# Races between two requests.


def test_record_released_after_the_failed_insert_is_inserted_again(
    table: Table, store: TableStore
) -> None:
    assert take(store) is None
    table.before["read"] = [lambda: table.rows.pop("f#k")]

    assert take(store, token="u") is None

    assert table.calls == ["insert", "insert", "read", "insert"]
    assert table.rows["f#k"][0]["token"] == "u"


def test_own_record_after_a_retried_insert_means_acquired(table: Table, store: TableStore) -> None:
    # The first attempt landed, its answer was lost, and the retry found the record.
    table.before["insert"] = [lambda: table.write("f#k", _fields(_record("t")), name="landed")]

    assert take(store) is None

    # The version read then lets complete() write without reading again.
    assert store.complete("f#k", token="t", result=b"42", expires_at=NOW + 600)
    assert table.calls == ["insert", "landed", "read", "update"]


def test_lost_takeover_returns_the_winners_record(table: Table, store: TableStore) -> None:
    assert take(store) is None
    winner = _record("w", lock_expires_at=NOW + 90)
    table.before["replace"] = [
        lambda: table.write("f#k", _fields(winner), version=table.rows["f#k"][1], name="winner")
    ]

    assert take(store, token="u", at=LATER) == winner

    assert table.calls[-4:] == ["replace", "winner", "insert", "read"]


def test_dead_record_deleted_before_the_takeover_is_inserted_again(
    table: Table, store: TableStore
) -> None:
    assert take(store) is None
    table.before["replace"] = [lambda: table.rows.pop("f#k")]

    assert take(store, token="u", at=LATER) is None

    assert table.calls[-3:] == ["read", "replace", "insert"]
    assert table.rows["f#k"][0]["token"] == "u"


def test_stale_version_is_read_again_and_the_owner_checked(table: Table, store: TableStore) -> None:
    assert take(store) is None
    table.faults["update"] = [Conflict("f#k")]

    assert store.complete("f#k", token="t", result=b"42", expires_at=NOW + 600)

    assert table.calls == ["insert", "update", "read", "update"]


def test_owner_write_on_a_vanished_record_is_refused(table: Table, store: TableStore) -> None:
    assert take(store) is None
    table.faults["delete"] = [Missing("f#k")]

    assert not store.release("f#k", token="t")


def test_key_that_keeps_changing_is_unavailable(table: Table, store: TableStore) -> None:
    table.faults["insert"] = [Conflict("f#k")] * 8

    with pytest.raises(StoreUnavailableError, match="kept changing over 8 attempts"):
        take(store)

    assert table.calls == ["insert", "read"] * 8


# Errors.


def test_client_errors_become_store_unavailable(table: Table, store: TableStore) -> None:
    table.faults["read"] = [Down("refused")]

    with pytest.raises(StoreUnavailableError) as caught:
        store.get("f#k")

    assert caught.value.detail == "Table idempotency store unavailable: Down"
    assert caught.value.status == 503
    assert isinstance(caught.value.__cause__, Down)


@pytest.mark.parametrize("fault", [Conflict("f#k"), Missing("f#k")])
def test_conflicts_where_none_is_expected_become_store_unavailable(
    table: Table, store: TableStore, fault: Exception
) -> None:
    table.faults["read"] = [fault]

    with pytest.raises(StoreUnavailableError):
        store.get("f#k")


def test_other_exceptions_pass_through(table: Table, store: TableStore) -> None:
    table.faults["insert"] = [RuntimeError("a bug")]

    with pytest.raises(RuntimeError, match="a bug"):
        take(store)


def test_row_over_the_size_limit_raises_record_too_large(table: Table, store: TableStore) -> None:
    assert take(store) is None

    with pytest.raises(RecordTooLargeError) as caught:
        store.complete("f#k", token="t", result=bytes(3000), expires_at=NOW + 600)

    assert isinstance(caught.value.__cause__, TooBig)
    assert table.rows["f#k"][0]["status"] == "in_progress"


def test_result_over_the_limit_is_refused_before_any_request(
    table: Table, store: TableStore
) -> None:
    with pytest.raises(RecordTooLargeError, match="4097 bytes exceeds Table's row size limit"):
        store.complete("f#k", token="t", result=bytes(4097), expires_at=NOW + 600)

    assert table.calls == []


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "done"},
        {"status": 1},
        {"token": 7},
        {"fingerprint": b"fp"},
        {"lock_expires_at": "soon"},
        {"expires_at": True},
        {"key": "another"},
        {"result": "42"},
        {"result": ...},
        {"key": ...},
    ],
)
def test_unreadable_row_raises_corrupt_record(
    table: Table, store: TableStore, changes: dict[str, Any]
) -> None:
    fields = {**_fields(_record("t", status=Status.COMPLETED, result=b"42")), **changes}
    table.rows["f#k"] = ({k: v for k, v in fields.items() if v is not ...}, 1)

    with pytest.raises(CorruptRecordError, match="Table idempotency record"):
        store.get("f#k")
    # acquire() finds it, cannot judge it, and never overwrites it.
    with pytest.raises(CorruptRecordError):
        take(store, token="u", at=LATER)
    assert table.rows["f#k"][0]["token"] == fields["token"]


def test_missing_fingerprint_and_integer_times_are_read() -> None:
    table = Table()
    table.rows["f#k"] = (
        {
            "key": "f#k",
            "status": "in_progress",
            "token": "t",
            "lock_expires_at": 1,
            "expires_at": 2,
        },
        1,
    )

    assert TableStore(table).get("f#k") == Record("f#k", Status.IN_PROGRESS, "t", None, 1.0, 2.0)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_times_are_refused_before_any_request(
    table: Table, store: TableStore, bad: float
) -> None:
    for lock_expires_at, expires_at, now in ((bad, NOW, NOW), (NOW, bad, NOW), (NOW, NOW, bad)):
        with pytest.raises(ValueError, match="finite"):
            store.acquire(
                "f#k",
                token="t",
                fingerprint=None,
                lock_expires_at=lock_expires_at,
                expires_at=expires_at,
                now=now,
            )
    with pytest.raises(ValueError, match="finite"):
        store.complete("f#k", token="t", result=b"", expires_at=bad)

    assert table.calls == []


@pytest.mark.parametrize("max_result_bytes", [0, -1, 4097])
def test_max_result_bytes_must_fit_the_backend(max_result_bytes: int) -> None:
    with pytest.raises(ConfigurationError, match="between 1 and 4096 \\(Table's row size limit\\)"):
        TableStore(max_result_bytes=max_result_bytes)


def test_missing_sdk_names_the_extra() -> None:
    store = TableStore()
    store.importable = False

    with pytest.raises(MissingDependencyError) as caught:
        store.get("f#k")

    assert isinstance(caught.value, ImportError)
    assert caught.value.package == "table-sdk"
    assert "pip install 'polyserve-table[sdk]'" in caught.value.detail


# The client.


def test_client_is_made_on_first_use_once_and_closed_by_its_maker() -> None:
    store = TableStore()
    assert store.made == []

    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: store.client, range(32)))

    assert len(store.made) == 1
    assert all(client is store.made[0] for client in clients)
    store.close()
    assert store.made[0].closed
    assert store.client is store.made[1]


def test_given_client_is_never_closed(table: Table) -> None:
    store = TableStore(table)

    store.close()

    assert not table.closed
    assert store.client is table
    assert store.made == []


def test_repr_names_the_store_and_its_table(store: TableStore) -> None:
    assert repr(store) == "TableStore('rows')"


def test_remembered_versions_are_bounded(table: Table, store: TableStore) -> None:
    for i in range(1025):
        assert take(store, f"f#{i}") is None
    table.calls.clear()

    # The 1025th acquire found the memory full and started it afresh.
    assert store.complete("f#0", token="t", result=b"", expires_at=NOW + 600)
    assert store.complete("f#1024", token="t", result=b"", expires_at=NOW + 600)

    assert table.calls == ["read", "update", "update"]


def _record(
    token: str,
    *,
    status: Status = Status.IN_PROGRESS,
    lock_expires_at: float = NOW + 30,
    expires_at: float = NOW + 600,
    result: bytes | None = None,
) -> Record:
    return Record("f#k", status, token, "fp", lock_expires_at, expires_at, result)
