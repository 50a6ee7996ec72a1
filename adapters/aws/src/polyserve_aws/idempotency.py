"""Idempotency records in a DynamoDB table: ``DynamoDBStore``.

One item per key, with the key as the table's partition key (a string attribute named
``key_attr``, ``"id"`` by default)::

    id               S   "<function>#<key>"
    status           S   "in_progress" | "completed"
    token            S   owner token written by acquire()
    fingerprint      S   payload hash (absent when the decorator has none)
    lock_expires_at  N   epoch seconds
    expires_at       N   epoch seconds
    result           B   serialised result (COMPLETED only; absent when empty)
    expiration       N   integer epoch seconds, for DynamoDB TTL clean-up only

Every decision about a record happens on the server, in a condition expression, so any number
of concurrent invocations agree on one owner:

- ``acquire`` is one ``PutItem`` whose condition accepts only a missing or dead record. When
  it fails, ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` makes DynamoDB return the live
  record with the error, so a hit costs one round trip. Servers that do not return it
  (older DynamoDB Local releases, dynalite) cost one more: a strongly consistent
  ``GetItem``.
- ``complete`` is an ``UpdateItem`` and ``release`` a ``DeleteItem``, both conditional on the
  record still being IN_PROGRESS with the caller's token.

Liveness is decided by comparing the stored times with ``now``; DynamoDB's TTL only removes
old items eventually and is never relied on.

botocore (boto3's core) is imported on first use: Lambda's Python runtime ships it,
elsewhere install ``polyserve-aws[dynamodb]``.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from polyserve.errors import (
    ConfigurationError,
    CorruptRecordError,
    MissingDependencyError,
    RecordTooLargeError,
    StoreUnavailableError,
)
from polyserve.idempotency.store import LazyClient, Record, Status, is_live

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["ITEM_SIZE_LIMIT", "DynamoDBStore"]

ITEM_SIZE_LIMIT = 400 * 1024
"""DynamoDB's maximum item size in bytes, attribute names included."""

# Room left for everything but the result: the key (a partition key is at most 2 KiB), the
# token, the fingerprint, the times and the attribute names.
_DEFAULT_MAX_RESULT_BYTES = ITEM_SIZE_LIMIT - 4 * 1024

# A failed conditional write whose record then vanished or died before it was read back
# (the GetItem fallback) is tried again; each retry means another writer made progress.
_ACQUIRE_ATTEMPTS = 8

_ACQUIRE_CONDITION = (
    "attribute_not_exists(#id)"
    " OR (#status = :completed AND #exp <= :now)"
    " OR (#status = :inprogress AND #lock <= :now)"
)
_OWNER_CONDITION = "#status = :inprogress AND #token = :token"

_STATUS = "status"
_TOKEN = "token"
_FINGERPRINT = "fingerprint"
_LOCK_EXPIRES_AT = "lock_expires_at"
_EXPIRES_AT = "expires_at"
_RESULT = "result"


class DynamoDBStore:
    """An idempotency store backed by one DynamoDB table.

    Pass an existing boto3 DynamoDB ``client``, or let the store create one on first use
    from ``region`` and ``endpoint_url`` (credentials come from the usual boto3 chain). The
    table needs a string partition key named ``key_attr`` and no sort key;
    :meth:`create_table` makes one. Enable TTL on ``ttl_attr`` to have DynamoDB delete old
    records.

    ``max_result_bytes`` defaults to DynamoDB's 400 KiB item limit minus 4 KiB for the key
    and bookkeeping attributes. Every DynamoDB or connection error is raised as
    :class:`~polyserve.errors.StoreUnavailableError`; an item too large to write as
    :class:`~polyserve.errors.RecordTooLargeError`; an item the store cannot read as
    :class:`~polyserve.errors.CorruptRecordError`.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        key_attr: str = "id",
        ttl_attr: str = "expiration",
        max_result_bytes: int = _DEFAULT_MAX_RESULT_BYTES,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
    ) -> None:
        if not table_name:
            raise ConfigurationError("DynamoDBStore needs a table name")
        if not 0 < max_result_bytes < ITEM_SIZE_LIMIT:
            raise ConfigurationError(
                f"max_result_bytes must be between 1 and {ITEM_SIZE_LIMIT - 1} "
                f"(DynamoDB's item size limit), got {max_result_bytes}"
            )
        reserved = {_STATUS, _TOKEN, _FINGERPRINT, _LOCK_EXPIRES_AT, _EXPIRES_AT, _RESULT}
        if key_attr in reserved or ttl_attr in reserved or key_attr == ttl_attr:
            raise ConfigurationError(
                f"key_attr ({key_attr!r}) and ttl_attr ({ttl_attr!r}) must differ from each "
                f"other and from the record attributes {sorted(reserved)}"
            )
        self.table_name = table_name
        self.key_attr = key_attr
        self.ttl_attr = ttl_attr
        self.max_result_bytes = max_result_bytes
        self._region = region
        self._endpoint_url = endpoint_url
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_attempts = max_attempts
        self._client: LazyClient[DynamoDBClient] = LazyClient(self._new_client, client)

    def __repr__(self) -> str:
        return f"DynamoDBStore({self.table_name!r})"

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client, created on first use unless one was given."""
        return self._client.get()

    def _new_client(self) -> DynamoDBClient:
        try:
            import botocore.session
            from botocore.config import Config
        except ImportError as exc:
            raise MissingDependencyError(
                "boto3", feature="DynamoDBStore", extra="polyserve-aws[dynamodb]"
            ) from exc
        config = Config(
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            retries={"mode": "standard", "max_attempts": self._max_attempts},
        )
        # botocore directly: boto3 adds nothing to a low-level client but import time (it
        # loads s3transfer), which a cold start pays. A session of its own, since sessions
        # are not safe to share between threads.
        with self._errors():
            client = botocore.session.Session().create_client(
                "dynamodb", region_name=self._region, endpoint_url=self._endpoint_url, config=config
            )
        return cast("DynamoDBClient", client)

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
        """Write an IN_PROGRESS record unless a live one exists; return the live one if so.

        One conditional ``PutItem``; a hit also costs a ``GetItem`` on servers that do not
        return the old item with a failed condition.
        """
        item: dict[str, AttributeValueTypeDef] = {
            self.key_attr: {"S": key},
            _STATUS: {"S": Status.IN_PROGRESS.value},
            _TOKEN: {"S": token},
            _LOCK_EXPIRES_AT: {"N": _number(lock_expires_at)},
            _EXPIRES_AT: {"N": _number(expires_at)},
            self.ttl_attr: {"N": str(math.ceil(max(lock_expires_at, expires_at)))},
        }
        if fingerprint is not None:
            item[_FINGERPRINT] = {"S": fingerprint}
        values: dict[str, AttributeValueTypeDef] = {
            ":now": {"N": _number(now)},
            ":completed": {"S": Status.COMPLETED.value},
            ":inprogress": {"S": Status.IN_PROGRESS.value},
        }
        for _ in range(_ACQUIRE_ATTEMPTS):
            old: Mapping[str, Any] | None
            with self._errors():
                try:
                    self.client.put_item(
                        TableName=self.table_name,
                        Item=item,
                        ConditionExpression=_ACQUIRE_CONDITION,
                        ExpressionAttributeNames={
                            "#id": self.key_attr,
                            "#status": _STATUS,
                            "#lock": _LOCK_EXPIRES_AT,
                            "#exp": _EXPIRES_AT,
                        },
                        ExpressionAttributeValues=values,
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                except self.client.exceptions.ConditionalCheckFailedException as exc:
                    # botocore puts the modelled "Item" field at the top of the response.
                    old = cast("Mapping[str, Any]", exc.response).get("Item")
                else:
                    return None
            if old is None:
                old = self._get_item(key)
                if old is None:
                    continue  # released between the two requests: try to take it again
            record = self._decode(old)
            if record.token == token and record.status is Status.IN_PROGRESS:
                return None  # botocore retried a PutItem whose first attempt had landed
            if is_live(record, now):
                return record
        raise StoreUnavailableError(
            f"DynamoDB idempotency store: key kept changing over {_ACQUIRE_ATTEMPTS} attempts"
        )

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Mark the record COMPLETED with ``result`` iff it is IN_PROGRESS with ``token``.

        One conditional ``UpdateItem``. Returns False when the record is gone or owned by
        another token. Raises :class:`~polyserve.errors.RecordTooLargeError` when the item
        would exceed DynamoDB's size limit.
        """
        values: dict[str, AttributeValueTypeDef] = {
            ":completed": {"S": Status.COMPLETED.value},
            ":inprogress": {"S": Status.IN_PROGRESS.value},
            ":token": {"S": token},
            ":exp": {"N": _number(expires_at)},
            ":ttl": {"N": str(math.ceil(expires_at))},
        }
        names = {
            "#status": _STATUS,
            "#token": _TOKEN,
            "#exp": _EXPIRES_AT,
            "#ttl": self.ttl_attr,
            "#result": _RESULT,
        }
        update = "SET #status = :completed, #exp = :exp, #ttl = :ttl"
        # DynamoDB accepts empty binary values only since 2020 (older DynamoDB Local rejects
        # them), so an empty result is stored as a missing attribute.
        if result:
            update += ", #result = :result"
            values[":result"] = {"B": result}
        else:
            update += " REMOVE #result"
        return self._conditional(
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={self.key_attr: {"S": key}},
                UpdateExpression=update,
                ConditionExpression=_OWNER_CONDITION,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            ),
        )

    def release(self, key: str, *, token: str) -> bool:
        """Delete the record iff it is IN_PROGRESS with ``token``: one conditional DeleteItem."""
        return self._conditional(
            lambda: self.client.delete_item(
                TableName=self.table_name,
                Key={self.key_attr: {"S": key}},
                ConditionExpression=_OWNER_CONDITION,
                ExpressionAttributeNames={"#status": _STATUS, "#token": _TOKEN},
                ExpressionAttributeValues={
                    ":inprogress": {"S": Status.IN_PROGRESS.value},
                    ":token": {"S": token},
                },
            ),
        )

    def get(self, key: str) -> Record | None:
        """The stored record, live or not, read consistently; None when there is none."""
        item = self._get_item(key)
        return None if item is None else self._decode(item)

    def clear(self) -> None:
        """Delete every item in the table (for tests: it scans the whole table)."""
        with self._errors():
            paginator = self.client.get_paginator("scan")
            pages = paginator.paginate(
                TableName=self.table_name,
                ProjectionExpression="#id",
                ExpressionAttributeNames={"#id": self.key_attr},
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    self.client.delete_item(
                        TableName=self.table_name, Key={self.key_attr: item[self.key_attr]}
                    )

    def close(self) -> None:
        """Close the connections of a client this store created (a given client stays open)."""
        self._client.close()

    def create_table(self) -> None:
        """Create the table (on-demand billing) if it does not exist, and enable TTL.

        Meant for tests and local servers; production tables belong in infrastructure code.
        TTL is enabled where the server supports it (dynalite does not), since the store
        never depends on it.
        """
        with self._errors():
            try:
                self.client.create_table(
                    TableName=self.table_name,
                    AttributeDefinitions=[{"AttributeName": self.key_attr, "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": self.key_attr, "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except self.client.exceptions.ResourceInUseException:
                return
            self.client.get_waiter("table_exists").wait(
                TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            try:
                self.client.update_time_to_live(
                    TableName=self.table_name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": self.ttl_attr},
                )
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "UnknownOperationException":
                    raise

    def _get_item(self, key: str) -> Mapping[str, Any] | None:
        with self._errors():
            response = self.client.get_item(
                TableName=self.table_name, Key={self.key_attr: {"S": key}}, ConsistentRead=True
            )
        return response.get("Item")

    def _conditional(self, request: Callable[[], object]) -> bool:
        """Run a conditional write; True if it applied, False if its condition failed."""
        with self._errors():
            try:
                request()
            except self.client.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def _decode(self, item: Mapping[str, Any]) -> Record:
        try:
            status = Status(_attribute(item, _STATUS, "S"))
            fingerprint = _attribute(item, _FINGERPRINT, "S") if _FINGERPRINT in item else None
            result: bytes | None = None
            if status is Status.COMPLETED:
                result = _attribute(item, _RESULT, "B") if _RESULT in item else b""
            return Record(
                key=_attribute(item, self.key_attr, "S"),
                status=status,
                token=_attribute(item, _TOKEN, "S"),
                fingerprint=fingerprint,
                lock_expires_at=float(_attribute(item, _LOCK_EXPIRES_AT, "N")),
                expires_at=float(_attribute(item, _EXPIRES_AT, "N")),
                result=result,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecordError(
                f"DynamoDB idempotency record cannot be read: {type(exc).__name__}: {exc}"
            ) from exc

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate botocore's exceptions into polyserve's."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code == "ValidationException" and "item size" in error.get("Message", "").lower():
                raise RecordTooLargeError(
                    "DynamoDB idempotency record exceeds the 400 KiB item size limit"
                ) from exc
            # Anything else DynamoDB answers (throttling, a missing table, missing
            # permissions, a key schema that does not match) fails the invocation like an
            # outage does: nothing was written, and the platform retries or reports it.
            raise StoreUnavailableError(f"DynamoDB idempotency store failed: {code}") from exc
        except BotoCoreError as exc:
            # Connection refused, timeouts, missing credentials or region.
            raise StoreUnavailableError(
                f"DynamoDB idempotency store unavailable: {type(exc).__name__}"
            ) from exc


def _number(value: float) -> str:
    """A float as a DynamoDB number: its shortest repr, which reads back exactly."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"record times must be finite, got {value}")
    return repr(value)


@overload
def _attribute(item: Mapping[str, Any], name: str, kind: Literal["S", "N"]) -> str: ...
@overload
def _attribute(item: Mapping[str, Any], name: str, kind: Literal["B"]) -> bytes: ...
def _attribute(item: Mapping[str, Any], name: str, kind: str) -> str | bytes:
    """The value of attribute ``name``, which must be of DynamoDB type ``kind``."""
    value = item[name]
    raw = value.get(kind) if isinstance(value, dict) else None
    if kind == "B" and isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if kind != "B" and isinstance(raw, str):
        return raw
    raise TypeError(f"attribute {name!r} is not of type {kind}")
