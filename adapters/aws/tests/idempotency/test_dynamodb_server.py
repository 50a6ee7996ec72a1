"""DynamoDBStore against DynamoDB Local and dynalite: the store contract and the error paths."""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from polyserve.errors import CorruptRecordError, RecordTooLargeError
from polyserve.idempotency.store import Status
from polyserve_aws.idempotency import ITEM_SIZE_LIMIT
from polyserve_testkit.store_contract import StoreContract, StoreFactory

if TYPE_CHECKING:
    from adapters.aws.tests.idempotency.factories import ClosingDynamoDBStore, DynamoDBStoreFactory

pytestmark = pytest.mark.integration

# The callers' clock in these tests: fixed, and years behind the servers' clock.
NOW = 1_700_000_000.0


class TestDynamoDBStoreContract(StoreContract):
    """The shared store contract, against the real server."""

    preload = ("adapters.aws.tests.idempotency.preload",)

    @pytest.fixture
    def make_store(self, dynamodb_factory: DynamoDBStoreFactory) -> StoreFactory:
        return dynamodb_factory


def count_requests(store: ClosingDynamoDBStore) -> list[str]:
    """The names of the DynamoDB operations the store's client sends from now on."""
    sent: list[str] = []

    def record(model: Any, **_: Any) -> None:
        sent.append(model.name)

    store.client.meta.events.register("before-call.dynamodb", record)
    return sent


def test_round_trips(dynamodb_store: ClosingDynamoDBStore) -> None:
    key = f"trips-{uuid.uuid4().hex}"
    sent = count_requests(dynamodb_store)
    times = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}

    assert dynamodb_store.acquire(key, token="a", fingerprint=None, **times) is None
    assert sent == ["PutItem"]

    sent.clear()
    hit = dynamodb_store.acquire(key, token="b", fingerprint=None, **times)
    assert hit is not None
    assert hit.token == "a"
    # One request where the server returns the old item with the failed condition; neither
    # DynamoDB Local 1.x nor dynalite does, so they need the consistent read.
    assert sent in (["PutItem"], ["PutItem", "GetItem"])

    sent.clear()
    assert dynamodb_store.complete(key, token="a", result=b"42", expires_at=NOW + 600)
    assert sent == ["UpdateItem"]

    sent.clear()
    assert not dynamodb_store.release(key, token="a")
    assert sent == ["DeleteItem"]


def test_largest_result_fits_beside_the_largest_key(dynamodb_store: ClosingDynamoDBStore) -> None:
    key = "k" * 2048  # DynamoDB's largest partition key
    result = os.urandom(dynamodb_store.max_result_bytes)
    times = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}

    assert dynamodb_store.acquire(key, token="t", fingerprint="f" * 64, **times) is None
    assert dynamodb_store.complete(key, token="t", result=result, expires_at=NOW + 600)

    stored = dynamodb_store.get(key)
    assert stored is not None
    assert (stored.status, stored.result) == (Status.COMPLETED, result)


@pytest.mark.parametrize(
    ("size", "refused_by_server"),
    [(ITEM_SIZE_LIMIT - 1, True), (ITEM_SIZE_LIMIT, False)],
    ids=["item-too-large", "result-over-the-item-limit"],
)
def test_result_over_the_item_limit_raises_record_too_large(
    dynamodb_store: ClosingDynamoDBStore, size: int, refused_by_server: bool
) -> None:
    key = f"large-{uuid.uuid4().hex}"
    times = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}
    assert dynamodb_store.acquire(key, token="t", fingerprint=None, **times) is None

    with pytest.raises(RecordTooLargeError) as caught:
        dynamodb_store.complete(key, token="t", result=bytes(size), expires_at=NOW)

    # A result that cannot fit even alone is refused without a request; the server's own
    # refusal arrives chained to the error.
    assert (caught.value.__cause__ is not None) is refused_by_server

    stored = dynamodb_store.get(key)
    assert stored is not None
    assert stored.status is Status.IN_PROGRESS


@pytest.mark.parametrize(
    "changes",
    [
        {"status": {"S": "exploded"}},
        {"status": {"N": "1"}},
        {"token": {"N": "1"}},
        {"expires_at": {"S": "tomorrow"}},
    ],
)
def test_corrupted_item_raises_corrupt_record(
    dynamodb_store: ClosingDynamoDBStore, changes: dict[str, Any]
) -> None:
    key = f"corrupt-{uuid.uuid4().hex}"
    item = {
        "id": {"S": key},
        "status": {"S": "completed"},
        "token": {"S": "t"},
        "lock_expires_at": {"N": str(NOW)},
        "expires_at": {"N": str(NOW + 600)},
        "result": {"B": b"42"},
        **changes,
    }
    dynamodb_store.client.put_item(TableName=dynamodb_store.table_name, Item=item)

    with pytest.raises(CorruptRecordError):
        dynamodb_store.get(key)
    # The condition cannot judge the record either, so acquire reads it and refuses it
    # rather than overwriting it.
    with pytest.raises(CorruptRecordError):
        dynamodb_store.acquire(
            key, token="u", fingerprint=None, lock_expires_at=NOW + 1, expires_at=NOW + 2, now=NOW
        )


def test_create_table_again_leaves_the_records(dynamodb_store: ClosingDynamoDBStore) -> None:
    key = f"kept-{uuid.uuid4().hex}"
    times = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}
    assert dynamodb_store.acquire(key, token="t", fingerprint=None, **times) is None

    dynamodb_store.create_table()

    assert dynamodb_store.get(key) is not None


def test_clear_removes_every_record(dynamodb_factory: DynamoDBStoreFactory) -> None:
    store = dynamodb_factory()
    keys = [f"clear-{i}-{uuid.uuid4().hex}" for i in range(3)]
    times = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}
    try:
        for key in keys:
            assert store.acquire(key, token="t", fingerprint=None, **times) is None

        store.clear()

        assert [store.get(key) for key in keys] == [None, None, None]
    finally:
        store.close()


def test_ttl_never_precedes_the_record_on_the_callers_clock(
    dynamodb_store: ClosingDynamoDBStore,
) -> None:
    # DynamoDB's TTL compares the expiration attribute with the server's clock. The callers'
    # clock here is years behind it, so an expiration taken from their times would be long
    # past, and TTL could delete a record that is live for them.
    key = f"ttl-{uuid.uuid4().hex}"
    before = time.time()
    assert dynamodb_store.acquire(key, token="t", fingerprint=None, lock_expires_at=NOW + 30,
                                  expires_at=NOW + 600, now=NOW) is None  # fmt: skip
    assert before + 600 <= expiration(dynamodb_store, key) <= time.time() + 600 + 2

    before = time.time()
    assert dynamodb_store.complete(key, token="t", result=b"r", expires_at=NOW + 3600)
    assert before + 3600 - 2 <= expiration(dynamodb_store, key) <= time.time() + 3600 + 2


def expiration(store: ClosingDynamoDBStore, key: str) -> float:
    """The item's TTL attribute, read directly."""
    item = store.client.get_item(
        TableName=store.table_name, Key={"id": {"S": key}}, ConsistentRead=True
    )["Item"]
    return float(item[store.ttl_attr]["N"])


# dynalite has no TTL.
@pytest.mark.parametrize("dynamodb_server", ["dynamodb-local"], indirect=True)
def test_ttl_deletion_spares_a_record_live_on_the_callers_clock(
    dynamodb_store: ClosingDynamoDBStore,
) -> None:
    # DynamoDB Local runs TTL every second or so. Had it deleted the first caller's live
    # record, the second would find the key free and run the handler too.
    key = f"ttl-race-{uuid.uuid4().hex}"
    times = {"lock_expires_at": NOW + 90, "expires_at": NOW + 600, "now": NOW + 60}
    assert dynamodb_store.acquire(key, token="first", fingerprint=None, **times) is None
    # Two items TTL must delete (within DynamoDB's five years), each waited for: proof that
    # deletion passes ran after the record was written.
    for _ in range(2):
        wait_for_ttl_deletion(dynamodb_store)

    held = dynamodb_store.acquire(key, token="second", fingerprint=None, **times)

    assert held is not None
    assert held.token == "first"


def wait_for_ttl_deletion(store: ClosingDynamoDBStore, timeout: float = 60.0) -> None:
    key = f"expired-{uuid.uuid4().hex}"
    item = {"id": {"S": key}, store.ttl_attr: {"N": str(int(time.time()) - 3600)}}
    store.client.put_item(TableName=store.table_name, Item=item)
    deadline = time.monotonic() + timeout
    while "Item" in store.client.get_item(
        TableName=store.table_name, Key={"id": {"S": key}}, ConsistentRead=True
    ):
        assert time.monotonic() < deadline, "DynamoDB Local's TTL deleted nothing"
        time.sleep(0.1)


def test_item_without_a_clock_offset_completes_with_its_own_times(
    dynamodb_store: ClosingDynamoDBStore,
) -> None:
    # An item an older release wrote has no ttl_offset: its expiration is expires_at.
    key = f"no-offset-{uuid.uuid4().hex}"
    item = {
        "id": {"S": key},
        "status": {"S": "in_progress"},
        "token": {"S": "t"},
        "lock_expires_at": {"N": str(NOW + 30)},
        "expires_at": {"N": str(NOW + 600)},
        "expiration": {"N": str(int(NOW + 600))},
    }
    dynamodb_store.client.put_item(TableName=dynamodb_store.table_name, Item=item)

    assert dynamodb_store.complete(key, token="t", result=b"r", expires_at=NOW + 3600.5)

    assert expiration(dynamodb_store, key) == NOW + 3601
    stored = dynamodb_store.get(key)
    assert stored is not None
    assert (stored.status, stored.result) == (Status.COMPLETED, b"r")
