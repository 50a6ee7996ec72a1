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
    ttl_offset       N   whole seconds from the caller's clock to this host's, for TTL only
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
old items eventually and is never relied on. TTL compares ``expiration`` with DynamoDB's own
clock, which the caller's ``now`` need not follow (a test's fixed clock, a host whose clock
is behind): were ``expiration`` taken from the caller's clock, TTL could delete a record
that is still live, and the next ``acquire`` would find the key free while its owner still
runs. So ``expiration`` is the record's remaining life, measured from the caller's ``now``,
added to this host's wall clock: ``ttl_offset`` keeps the difference between the two clocks
for ``complete``, which has no ``now``.

botocore (boto3's core) is imported on first use: Lambda's Python runtime ships it,
elsewhere install ``polyserve-aws[dynamodb]``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar, cast

from polyserve.errors import ConfigurationError
from polyserve.idempotency.store import ConditionalStore, Failure, Record, Status, ttl_offset

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["ITEM_SIZE_LIMIT", "DynamoDBStore"]

ITEM_SIZE_LIMIT = 400 * 1024
"""DynamoDB's maximum item size in bytes, attribute names included."""

# Room left for everything but the result: the key (a partition key is at most 2 KiB), the
# token, the fingerprint, the times and the attribute names.
_DEFAULT_MAX_RESULT_BYTES = ITEM_SIZE_LIMIT - 4 * 1024

_ACQUIRE_CONDITION = (
    "attribute_not_exists(#id)"
    " OR (#status = :completed AND #exp <= :now)"
    " OR (#status = :inprogress AND #lock <= :now)"
)
_OWNER_CONDITION = "#status = :inprogress AND #token = :token"
_OFFSET_ATTR = "ttl_offset"

# Every attribute but the key is named as the record's field.
_RECORD_ATTRIBUTES = tuple(f.name for f in dataclasses.fields(Record) if f.name != "key")


class DynamoDBStore(ConditionalStore["DynamoDBClient", None]):
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

    backend: ClassVar[str] = "DynamoDB"
    record_noun: ClassVar[str] = "item"
    result_limit: ClassVar[int] = ITEM_SIZE_LIMIT - 1
    requires: ClassVar[str] = "boto3"
    extra: ClassVar[str | None] = "polyserve-aws[dynamodb]"
    # Condition expressions test the stored record itself.
    versioned: ClassVar[bool] = False

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
        super().__init__(table_name, client=client, max_result_bytes=max_result_bytes)
        reserved = {*_RECORD_ATTRIBUTES, _OFFSET_ATTR}
        if key_attr in reserved or ttl_attr in reserved or key_attr == ttl_attr:
            raise ConfigurationError(
                f"key_attr ({key_attr!r}) and ttl_attr ({ttl_attr!r}) must differ from each "
                f"other and from the record attributes {sorted(reserved)}"
            )
        self.table_name = table_name
        self.key_attr = key_attr
        self.ttl_attr = ttl_attr
        self._region = region
        self._endpoint_url = endpoint_url
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_attempts = max_attempts

    def _new_client(self) -> DynamoDBClient:
        import botocore.session
        from botocore.config import Config

        config = Config(
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            retries={"mode": "standard", "max_attempts": self._max_attempts},
        )
        # botocore directly: boto3 adds nothing to a low-level client but import time (it
        # loads s3transfer), which a cold start pays. A session of its own, since sessions
        # are not safe to share between threads.
        client = botocore.session.Session().create_client(
            "dynamodb", region_name=self._region, endpoint_url=self._endpoint_url, config=config
        )
        return cast("DynamoDBClient", client)

    def _insert(self, record: Record, now: float) -> None:
        """One ``PutItem`` whose condition accepts only a missing or dead record."""
        # Rounded up twice, so that TTL never comes before the record's end.
        offset = ttl_offset(now)
        expiration = math.ceil(max(record.lock_expires_at, record.expires_at)) + offset
        item: dict[str, AttributeValueTypeDef] = {
            self.key_attr: {"S": record.key},
            "status": {"S": record.status.value},
            "token": {"S": record.token},
            "lock_expires_at": {"N": _number(record.lock_expires_at)},
            "expires_at": {"N": _number(record.expires_at)},
            _OFFSET_ATTR: {"N": str(offset)},
            self.ttl_attr: {"N": str(expiration)},
        }
        if record.fingerprint is not None:
            item["fingerprint"] = {"S": record.fingerprint}
        self.client.put_item(
            TableName=self.table_name,
            Item=item,
            ConditionExpression=_ACQUIRE_CONDITION,
            ExpressionAttributeNames={
                "#id": self.key_attr,
                "#status": "status",
                "#lock": "lock_expires_at",
                "#exp": "expires_at",
            },
            ExpressionAttributeValues={
                ":now": {"N": _number(now)},
                ":completed": {"S": Status.COMPLETED.value},
                ":inprogress": {"S": Status.IN_PROGRESS.value},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def _holder(self, conflict: Exception) -> tuple[Any, None] | None:
        # The live item, when DynamoDB returns it with the failed condition; botocore puts
        # the modelled "Item" field at the top of the response.
        item = cast("Mapping[str, Any]", getattr(conflict, "response", {})).get("Item")
        return None if item is None else (item, None)

    def _complete(
        self, key: str, token: str, version: None, result: bytes, expires_at: float
    ) -> None:
        """One ``UpdateItem`` conditional on the token."""
        values: dict[str, AttributeValueTypeDef] = {
            ":completed": {"S": Status.COMPLETED.value},
            ":inprogress": {"S": Status.IN_PROGRESS.value},
            ":token": {"S": token},
            ":exp": {"N": _number(expires_at)},
            ":ttl": {"N": str(math.ceil(expires_at))},
            ":none": {"N": "0"},
        }
        # The acquire's clock offset carries expires_at over to this host's clock (an item
        # written before the store kept one has none: its times are taken as they are).
        update = (
            "SET #status = :completed, #exp = :exp, #ttl = if_not_exists(#offset, :none) + :ttl"
        )
        # DynamoDB accepts empty binary values only since 2020 (older DynamoDB Local rejects
        # them), so an empty result is stored as a missing attribute.
        if result:
            update += ", #result = :result"
            values[":result"] = {"B": result}
        else:
            update += " REMOVE #result"
        self.client.update_item(
            TableName=self.table_name,
            Key={self.key_attr: {"S": key}},
            UpdateExpression=update,
            ConditionExpression=_OWNER_CONDITION,
            ExpressionAttributeNames={
                "#status": "status",
                "#token": "token",
                "#exp": "expires_at",
                "#ttl": self.ttl_attr,
                "#offset": _OFFSET_ATTR,
                "#result": "result",
            },
            ExpressionAttributeValues=values,
        )

    def _delete(self, key: str, token: str, version: None) -> bool:
        """One ``DeleteItem`` conditional on the token."""
        self.client.delete_item(
            TableName=self.table_name,
            Key={self.key_attr: {"S": key}},
            ConditionExpression=_OWNER_CONDITION,
            ExpressionAttributeNames={"#status": "status", "#token": "token"},
            ExpressionAttributeValues={
                ":inprogress": {"S": Status.IN_PROGRESS.value},
                ":token": {"S": token},
            },
        )
        return True

    def _read(self, key: str) -> tuple[Any, None] | None:
        """A strongly consistent ``GetItem``."""
        response = self.client.get_item(
            TableName=self.table_name, Key={self.key_attr: {"S": key}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else (item, None)

    def _fields(self, item: Mapping[str, Any]) -> dict[str, object]:
        fields = {"key": _value(item[self.key_attr])}
        fields.update((name, _value(item[name])) for name in _RECORD_ATTRIBUTES if name in item)
        # An empty result is stored as no attribute (see _complete).
        fields.setdefault("result", b"")
        return fields

    def _failure(self, exc: Exception) -> Failure | None:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code == "ConditionalCheckFailedException":
                return Failure.CONFLICT
            if code == "ValidationException" and "item size" in error.get("Message", "").lower():
                return Failure.TOO_LARGE
            # Anything else DynamoDB answers: throttling, a missing table, missing
            # permissions, a key schema that does not match.
            return Failure.UNAVAILABLE
        # BotoCoreError: connection refused, timeouts, missing credentials or region.
        return Failure.UNAVAILABLE if isinstance(exc, BotoCoreError) else None

    def _describe(self, exc: Exception) -> str:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            return f"failed: {exc.response.get('Error', {}).get('Code', '')}"
        return super()._describe(exc)

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


def _number(value: float) -> str:
    """A float as a DynamoDB number: its shortest repr, which reads back exactly."""
    return repr(float(value))


def _value(attribute: object) -> object:
    """A string, number or binary attribute value as a Python value.

    Anything else raises TypeError, so the base reports the item as corrupt.
    """
    if isinstance(attribute, dict) and len(attribute) == 1:
        ((kind, raw),) = attribute.items()
        if kind == "S" and isinstance(raw, str):
            return raw
        if kind == "N" and isinstance(raw, str):
            return float(raw)
        if kind == "B" and isinstance(raw, (bytes, bytearray)):
            return bytes(raw)
    raise TypeError("not a string, number or binary attribute")
