"""DynamoDBStore's requests and error mapping, checked against botocore's Stubber (no server)."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.idempotency.factories import DynamoDBStoreFactory

from polyserve.errors import (
    ConfigurationError,
    CorruptRecordError,
    RecordTooLargeError,
    StoreUnavailableError,
)
from polyserve.idempotency.store import Record, Status
from polyserve_aws.idempotency import ITEM_SIZE_LIMIT, DynamoDBStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from botocore.stub import Stubber

TABLE = "idempotency"
NOW = 1_700_000_000.25
# This host's clock in these tests: 299.5 s ahead of the callers' NOW.
WALL_CLOCK = NOW + 299.5


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DynamoDBStore, Stubber]]:
    import boto3
    from botocore.stub import Stubber

    from polyserve.idempotency.store import ttl_offset

    monkeypatch.setattr(
        "polyserve_aws.idempotency.ttl_offset", lambda now: ttl_offset(now, WALL_CLOCK)
    )
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield DynamoDBStore(TABLE, client=client), stubber
        stubber.assert_no_pending_responses()


def stored_item(token: str = "theirs", status: str = "in_progress") -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": {"S": "f#k"},
        "status": {"S": status},
        "token": {"S": token},
        "fingerprint": {"S": "fp"},
        "lock_expires_at": {"N": str(NOW + 30)},
        "expires_at": {"N": str(NOW + 600)},
        "expiration": {"N": str(int(NOW + 600))},
    }
    if status == "completed":
        item["result"] = {"B": b"42"}
    return item


def put_params(token: str = "mine") -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "Item": {
            "id": {"S": "f#k"},
            "status": {"S": "in_progress"},
            "token": {"S": token},
            "fingerprint": {"S": "fp"},
            "lock_expires_at": {"N": "1700000030.25"},
            "expires_at": {"N": "1700000600.25"},
            # The clocks differ by 299.5 s, rounded up: TTL may delete the item only after
            # its 600.25 s of life have passed on this host's clock.
            "ttl_offset": {"N": "300"},
            "expiration": {"N": "1700000901"},
        },
        "ConditionExpression": (
            "attribute_not_exists(#id)"
            " OR (#status = :completed AND #exp <= :now)"
            " OR (#status = :inprogress AND #lock <= :now)"
        ),
        "ExpressionAttributeNames": {
            "#id": "id",
            "#status": "status",
            "#lock": "lock_expires_at",
            "#exp": "expires_at",
        },
        "ExpressionAttributeValues": {
            ":now": {"N": "1700000000.25"},
            ":completed": {"S": "completed"},
            ":inprogress": {"S": "in_progress"},
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def acquire(store: DynamoDBStore, token: str = "mine") -> Record | None:
    return store.acquire(
        "f#k",
        token=token,
        fingerprint="fp",
        lock_expires_at=NOW + 30,
        expires_at=NOW + 600,
        now=NOW,
    )


def condition_failed(stubber: Stubber, method: str, item: dict[str, Any] | None = None) -> None:
    stubber.add_client_error(
        method,
        service_error_code="ConditionalCheckFailedException",
        service_message="The conditional request failed",
        http_status_code=400,
        modeled_fields={"Item": item} if item is not None else None,
    )


def test_acquire_is_one_conditional_put(stubbed: tuple[DynamoDBStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_response("put_item", {}, put_params())

    assert acquire(store) is None


def test_hit_costs_one_request_when_dynamodb_returns_the_old_item(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    condition_failed(stubber, "put_item", stored_item(status="completed"))

    # No GetItem is queued: the Stubber would fail the call if the store made one.
    assert acquire(store) == Record(
        "f#k", Status.COMPLETED, "theirs", "fp", NOW + 30, NOW + 600, b"42"
    )


def test_hit_falls_back_to_a_consistent_read_when_the_old_item_is_missing(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    condition_failed(stubber, "put_item")
    stubber.add_response(
        "get_item",
        {"Item": stored_item()},
        {"TableName": TABLE, "Key": {"id": {"S": "f#k"}}, "ConsistentRead": True},
    )

    record = acquire(store)

    assert record is not None
    assert (record.status, record.token, record.result) == (Status.IN_PROGRESS, "theirs", None)


def test_fallback_retries_the_put_when_the_record_was_released_meanwhile(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    condition_failed(stubber, "put_item")
    stubber.add_response("get_item", {})
    stubber.add_response("put_item", {}, put_params())

    assert acquire(store) is None


def test_own_item_returned_after_a_retried_put_means_acquired(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    condition_failed(stubber, "put_item", stored_item(token="mine"))

    assert acquire(store, token="mine") is None


def test_complete_is_an_update_conditional_on_token(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    names = {
        "#status": "status",
        "#token": "token",
        "#exp": "expires_at",
        "#ttl": "expiration",
        "#offset": "ttl_offset",
        "#result": "result",
    }
    values = {
        ":completed": {"S": "completed"},
        ":inprogress": {"S": "in_progress"},
        ":token": {"S": "mine"},
        ":exp": {"N": "1700000600.25"},
        ":ttl": {"N": "1700000601"},
        ":none": {"N": "0"},
    }
    # The offset the acquire stored carries expires_at over to this host's clock.
    update = "SET #status = :completed, #exp = :exp, #ttl = if_not_exists(#offset, :none) + :ttl"
    common = {
        "TableName": TABLE,
        "Key": {"id": {"S": "f#k"}},
        "ConditionExpression": "#status = :inprogress AND #token = :token",
        "ExpressionAttributeNames": names,
    }
    stubber.add_response(
        "update_item",
        {},
        {
            **common,
            "UpdateExpression": update + ", #result = :result",
            "ExpressionAttributeValues": {**values, ":result": {"B": b"42"}},
        },
    )
    # DynamoDB Local before 2020 rejects empty binary values: an empty result is no attribute.
    stubber.add_response(
        "update_item",
        {},
        {
            **common,
            "UpdateExpression": update + " REMOVE #result",
            "ExpressionAttributeValues": values,
        },
    )
    condition_failed(stubber, "update_item")

    assert store.complete("f#k", token="mine", result=b"42", expires_at=NOW + 600)
    assert store.complete("f#k", token="mine", result=b"", expires_at=NOW + 600)
    assert not store.complete("f#k", token="mine", result=b"42", expires_at=NOW + 600)


def test_release_is_a_delete_conditional_on_token(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    params = {
        "TableName": TABLE,
        "Key": {"id": {"S": "f#k"}},
        "ConditionExpression": "#status = :inprogress AND #token = :token",
        "ExpressionAttributeNames": {"#status": "status", "#token": "token"},
        "ExpressionAttributeValues": {":inprogress": {"S": "in_progress"}, ":token": {"S": "t"}},
    }
    stubber.add_response("delete_item", {}, params)
    condition_failed(stubber, "delete_item")

    assert store.release("f#k", token="t")
    assert not store.release("f#k", token="t")


def test_completed_record_without_result_attribute_reads_as_empty_result(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    item = stored_item(status="completed")
    del item["result"]
    stubber.add_response("get_item", {"Item": item})

    record = store.get("f#k")

    assert record is not None
    assert record.result == b""


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("status", None),
        ("status", {"S": "finished"}),
        ("status", {"N": "1"}),
        ("token", {"N": "7"}),
        ("token", None),
        ("lock_expires_at", {"N": "soon"}),
        ("expires_at", {"S": "1700000000"}),
        ("fingerprint", {"B": b"fp"}),
        ("id", None),
    ],
)
def test_unreadable_item_raises_corrupt_record(
    stubbed: tuple[DynamoDBStore, Stubber], attribute: str, value: dict[str, Any] | None
) -> None:
    store, stubber = stubbed
    item = stored_item()
    if value is None:
        del item[attribute]
    else:
        item[attribute] = value
    stubber.add_response("get_item", {"Item": item})

    with pytest.raises(CorruptRecordError):
        store.get("f#k")


def test_completed_record_with_non_binary_result_is_corrupt(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    condition_failed(stubber, "put_item", {**stored_item(status="completed"), "result": {"S": "x"}})

    with pytest.raises(CorruptRecordError):
        acquire(store)


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ResourceNotFoundException",
        "AccessDeniedException",
    ],
)
def test_dynamodb_errors_raise_store_unavailable(
    stubbed: tuple[DynamoDBStore, Stubber], code: str
) -> None:
    store, stubber = stubbed
    stubber.add_client_error("put_item", service_error_code=code, http_status_code=400)

    with pytest.raises(StoreUnavailableError) as caught:
        acquire(store)

    assert code in caught.value.detail
    assert caught.value.status == 503


def test_item_over_the_size_limit_raises_record_too_large(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    stubber.add_client_error(
        "update_item",
        service_error_code="ValidationException",
        service_message="Item size to update has exceeded the maximum allowed size",
    )

    with pytest.raises(RecordTooLargeError):
        store.complete("f#k", token="t", result=b"x" * 1000, expires_at=NOW)


def test_other_validation_errors_raise_store_unavailable(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stubber = stubbed
    stubber.add_client_error(
        "get_item",
        service_error_code="ValidationException",
        service_message="The provided key element does not match the schema",
    )

    with pytest.raises(StoreUnavailableError):
        store.get("f#k")


def test_non_finite_times_are_rejected(stubbed: tuple[DynamoDBStore, Stubber]) -> None:
    store, _ = stubbed

    with pytest.raises(ValueError, match="finite"):
        store.acquire(
            "f#k",
            token="t",
            fingerprint=None,
            lock_expires_at=float("inf"),
            expires_at=NOW,
            now=NOW,
        )


@pytest.mark.parametrize(
    "options",
    [
        {"max_result_bytes": ITEM_SIZE_LIMIT},
        {"max_result_bytes": 0},
        {"key_attr": "status"},
        {"ttl_attr": "result"},
        {"ttl_attr": "ttl_offset"},
        {"key_attr": "ttl_offset"},
        {"key_attr": "pk", "ttl_attr": "pk"},
    ],
)
def test_invalid_options_raise_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        DynamoDBStore(TABLE, **options)


def test_default_max_result_bytes_fits_in_an_item() -> None:
    store = DynamoDBStore(TABLE)

    assert store.max_result_bytes + 2048 < ITEM_SIZE_LIMIT


def test_importing_the_store_does_not_import_boto3() -> None:
    code = (
        "import sys, polyserve_aws, polyserve_aws.idempotency\n"
        "from polyserve_aws.idempotency import DynamoDBStore\n"
        "DynamoDBStore('t', region='us-east-1')\n"
        "loaded = sorted(m for m in ('boto3', 'botocore') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


OPERATIONS: dict[str, Callable[[DynamoDBStore], object]] = {
    "acquire": acquire,
    "complete": lambda store: store.complete("f#k", token="t", result=b"", expires_at=NOW),
    "release": lambda store: store.release("f#k", token="t"),
    "get": lambda store: store.get("f#k"),
    "clear": lambda store: store.clear(),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_closed_port_raises_store_unavailable(operation: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    factory = DynamoDBStoreFactory(
        f"http://127.0.0.1:{port}", "us-east-1", "test", "test", TABLE, max_attempts=1
    )
    store = factory()
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            OPERATIONS[operation](store)
    finally:
        store.close()

    assert caught.value.code == "store_unavailable"
    assert "EndpointConnectionError" in caught.value.detail
