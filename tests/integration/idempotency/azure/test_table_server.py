"""TableStore against Azurite: the store contract, round trips, ETags and error paths."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from tests.integration.idempotency.azure.factories import ClosingTableStore, TableStoreFactory

from polyserve.errors import CorruptRecordError, RecordTooLargeError, StoreUnavailableError
from polyserve.idempotency.store import Record, Status
from polyserve_azure.idempotency import CHUNK_BYTES, TableStore
from polyserve_testkit.servers import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME
from polyserve_testkit.store_contract import StoreContract, StoreFactory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

NOW = 1_700_000_000.0
TIMES = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}

integration = pytest.mark.integration


@integration
class TestTableStoreContract(StoreContract):
    """The shared store contract, against the real server."""

    preload = ("azure.data.tables", "requests")

    @pytest.fixture
    def make_store(self, table_factory: TableStoreFactory) -> StoreFactory:
        return table_factory


@pytest.fixture
def counted(table_factory: TableStoreFactory) -> Iterator[tuple[TableStore, list[str]]]:
    """A store whose client notes the HTTP method of every request it sends."""
    from azure.data.tables import TableClient

    sent: list[str] = []

    def note(request: Any) -> None:
        sent.append(request.http_request.method)

    client = TableClient.from_connection_string(
        table_factory.connection_string, table_factory.table_name, raw_request_hook=note
    )
    store = ClosingTableStore(table_factory.table_name, client=client)
    yield store, sent
    store.close()


@integration
def test_round_trips(counted: tuple[TableStore, list[str]], table_store: TableStore) -> None:
    store, sent = counted
    key = f"trips-{uuid.uuid4().hex}"

    assert store.acquire(key, token="a", fingerprint=None, **TIMES) is None
    assert sent == ["POST"]

    sent.clear()
    hit = store.acquire(key, token="b", fingerprint=None, **TIMES)
    assert hit is not None
    assert hit.token == "a"
    assert sent == ["POST", "GET"]

    # The ETag from acquire() saves the read.
    sent.clear()
    assert store.complete(key, token="a", result=b"42", expires_at=NOW + 600)
    assert sent == ["PATCH"]

    # A store that did not acquire the key reads it first.
    other = f"trips-{uuid.uuid4().hex}"
    assert table_store.acquire(other, token="c", fingerprint=None, **TIMES) is None
    sent.clear()
    assert store.release(other, token="c")
    assert sent == ["GET", "DELETE"]
    assert table_store.get(other) is None


@integration
def test_dead_record_is_taken_over_in_one_more_request(
    counted: tuple[TableStore, list[str]],
) -> None:
    store, sent = counted
    key = f"takeover-{uuid.uuid4().hex}"
    assert store.acquire(key, token="a", fingerprint="f1", **TIMES) is None
    assert store.complete(key, token="a", result=b"old", expires_at=NOW + 10)

    sent.clear()
    later = {"lock_expires_at": NOW + 40, "expires_at": NOW + 700, "now": NOW + 10}
    assert store.acquire(key, token="b", fingerprint="f2", **later) is None

    assert sent == ["POST", "GET", "PUT"]
    assert store.get(key) == Record(key, Status.IN_PROGRESS, "b", "f2", NOW + 40, NOW + 700, None)


@integration
@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, None])
def test_results_are_stored_in_chunks(table_store: TableStore, size: int | None) -> None:
    key = f"chunks-{uuid.uuid4().hex}"
    # None: the largest result the store accepts by default.
    result = os.urandom(table_store.max_result_bytes if size is None else size)
    assert table_store.acquire(key, token="t", fingerprint=None, **TIMES) is None

    assert table_store.complete(key, token="t", result=result, expires_at=NOW + 600)

    stored = table_store.get(key)
    assert stored is not None
    assert (stored.status, stored.result) == (Status.COMPLETED, result)


@integration
@pytest.mark.parametrize(
    ("size", "refused_by_server"),
    [(15 * CHUNK_BYTES, True), (16 * CHUNK_BYTES, False)],
    ids=["entity-too-large", "result-over-the-entity-limit"],
)
def test_result_over_the_entity_limit_raises_record_too_large(
    table_store: TableStore, size: int, refused_by_server: bool
) -> None:
    key = f"large-{uuid.uuid4().hex}"
    assert table_store.acquire(key, token="t", fingerprint=None, **TIMES) is None

    with pytest.raises(RecordTooLargeError) as caught:
        table_store.complete(key, token="t", result=bytes(size), expires_at=NOW)

    # More chunks than an entity holds are refused without a request; the server's own
    # refusal (Azurite measures the base64 request body) arrives chained to the error.
    assert (caught.value.__cause__ is not None) is refused_by_server

    stored = table_store.get(key)
    assert stored is not None
    assert stored.status is Status.IN_PROGRESS


@integration
@pytest.mark.parametrize(
    "changes",
    [{"Status": "exploded"}, {"Status": 1}, {"Token": 7}, {"ExpiresAt": "tomorrow"}, {"Key": "x"}],
)
def test_corrupted_entity_raises_corrupt_record(
    table_store: TableStore, changes: dict[str, Any]
) -> None:
    key = f"corrupt-{uuid.uuid4().hex}"
    entity = {
        "PartitionKey": hashlib.sha256(key.encode()).hexdigest(),
        "RowKey": "record",
        "Key": key,
        "Status": "completed",
        "Token": "t",
        "LockExpiresAt": NOW,
        "ExpiresAt": NOW + 600,
        "ResultParts": 1,
        "Result0": b"42",
        **changes,
    }
    table_store.client.create_entity(entity)

    with pytest.raises(CorruptRecordError):
        table_store.get(key)
    with pytest.raises(CorruptRecordError):
        table_store.acquire(
            key, token="u", fingerprint=None, lock_expires_at=NOW + 1, expires_at=NOW + 2, now=NOW
        )


@integration
def test_delete_expired_removes_only_dead_records(table_factory: TableStoreFactory) -> None:
    store = TableStoreFactory(table_factory.connection_string, f"expired{uuid.uuid4().hex[:12]}")()
    try:
        store.create_table()
        live = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}
        dead = {"lock_expires_at": NOW - 1, "expires_at": NOW + 600, "now": NOW - 2}
        assert store.acquire("running", token="t", fingerprint=None, **live) is None
        assert store.acquire("abandoned", token="t", fingerprint=None, **dead) is None
        for key, expires_at in (("fresh", NOW + 1), ("stale", NOW), ("older", NOW - 5)):
            assert store.acquire(key, token="t", fingerprint=None, **live) is None
            assert store.complete(key, token="t", result=b"r", expires_at=expires_at)

        # Dead for at most 5 s: within the default grace, which allows for clock skew.
        assert store.delete_expired(NOW) == 0
        assert store.delete_expired(NOW + 294, grace=300) == 0  # the oldest ended at NOW - 5
        assert store.delete_expired(NOW + 300) == 3

        keys = ("running", "abandoned", "fresh", "stale", "older")
        assert {key: store.get(key) is not None for key in keys} == {
            "running": True,
            "abandoned": False,
            "fresh": True,
            "stale": False,
            "older": False,
        }
    finally:
        store.client.delete_table()
        store.close()


@pytest.mark.parametrize("grace", [-1.0, float("nan"), float("inf")])
def test_delete_expired_refuses_a_bad_grace(grace: float) -> None:
    # Refused before anything is sent: the endpoint is never contacted.
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT_NAME};"
        f"AccountKey={AZURITE_ACCOUNT_KEY};TableEndpoint=http://127.0.0.1:9/{AZURITE_ACCOUNT_NAME};"
    )
    store = TableStoreFactory(connection_string, "idempotency", max_attempts=1)()
    try:
        with pytest.raises(ValueError, match="grace"):
            store.delete_expired(NOW, grace=grace)
    finally:
        store.close()


@integration
def test_clear_removes_every_record(table_store: TableStore) -> None:
    keys = [f"clear-{i}-{uuid.uuid4().hex}" for i in range(3)]
    for key in keys:
        assert table_store.acquire(key, token="t", fingerprint=None, **TIMES) is None

    table_store.clear()

    assert [table_store.get(key) for key in keys] == [None, None, None]


OPERATIONS: dict[str, Callable[[TableStore], object]] = {
    "acquire": lambda store: store.acquire("f#k", token="t", fingerprint=None, **TIMES),
    "complete": lambda store: store.complete("f#k", token="t", result=b"", expires_at=NOW),
    "release": lambda store: store.release("f#k", token="t"),
    "get": lambda store: store.get("f#k"),
    "clear": lambda store: store.clear(),
    "delete_expired": lambda store: store.delete_expired(NOW),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_closed_port_raises_store_unavailable(operation: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT_NAME};"
        f"AccountKey={AZURITE_ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT_NAME};"
    )
    store = TableStoreFactory(connection_string, "idempotency", max_attempts=1)()
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            OPERATIONS[operation](store)
    finally:
        store.close()

    assert caught.value.code == "store_unavailable"
    assert "ServiceRequestError" in caught.value.detail
