"""DynamoDBStore against DynamoDB Local and dynalite: the store contract and the error paths."""

from __future__ import annotations

import os
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
