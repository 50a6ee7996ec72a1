"""Idempotency records in Azure Table Storage: ``TableStore``.

One entity per key. Keys may hold characters Table Storage forbids in keys (``/``, ``#``,
``?``), so the partition key is the key's SHA-256 (hex), which also spreads keys evenly over
partitions; the key itself is kept in a property::

    PartitionKey   sha256(key), hex
    RowKey         "record"
    Key            String   "<function>#<key>"
    Status         String   "in_progress" | "completed"
    Token          String   owner token written by acquire()
    Fingerprint    String   payload hash (absent when the decorator has none)
    LockExpiresAt  Double   epoch seconds
    ExpiresAt      Double   epoch seconds
    ResultParts    Int32    number of result chunks (COMPLETED only)
    Result0..      Binary   the serialised result in chunks of at most 64 KiB

Consistency comes from the service's optimistic concurrency:

- ``acquire`` inserts the entity, which fails if one exists. On that conflict it reads the
  existing entity; a live one is returned, a dead one is replaced on condition that its ETag
  is unchanged. Losing that race means re-reading and returning the winner's record.
- ``complete`` and ``release`` write on condition of the ETag of an entity that holds the
  caller's token. The ETag returned by ``acquire`` is remembered, so usually they need one
  request; when it is stale they read the entity, check the token and try again.

Table Storage has no TTL: old records stay until :meth:`TableStore.delete_expired` removes
them (run it from a timer). Liveness never depends on clean-up.

azure-data-tables is imported on first use; install ``polyserve-azure[tables]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from typing import TYPE_CHECKING, Any, ClassVar

from polyserve.errors import ConfigurationError
from polyserve.idempotency.store import ConditionalStore, Failure, Record, Status

if TYPE_CHECKING:
    from collections.abc import Mapping

    from azure.data.tables import TableClient

__all__ = ["CHUNK_BYTES", "TableStore"]

CHUNK_BYTES = 64 * 1024
"""The largest value of one binary property; longer results are split over several."""

# Entities are at most 1 MiB. Azure counts a binary property at its length, but Azurite
# checks the JSON request body, where binary values are base64 (4/3 longer): 11 chunks
# (704 KiB, 939 KiB in base64) fit both, with room for the key and the other properties.
_DEFAULT_MAX_RESULT_BYTES = 11 * CHUNK_BYTES
_MAX_CHUNKS = 15

_ROW_KEY = "record"
_KEY = "Key"
_STATUS = "Status"
_TOKEN = "Token"
_FINGERPRINT = "Fingerprint"
_LOCK_EXPIRES_AT = "LockExpiresAt"
_EXPIRES_AT = "ExpiresAt"
_RESULT_PARTS = "ResultParts"
_RESULT = "Result"

# The property that holds each of the record's fields (the result is in chunks).
_PROPERTIES = {
    "key": _KEY,
    "status": _STATUS,
    "token": _TOKEN,
    "fingerprint": _FINGERPRINT,
    "lock_expires_at": _LOCK_EXPIRES_AT,
    "expires_at": _EXPIRES_AT,
}

# Service error codes for an entity or property over the size limits.
_TOO_LARGE = ("EntityTooLarge", "PropertyValueTooLarge", "RequestBodyTooLarge")


class TableStore(ConditionalStore["TableClient", str]):
    """An idempotency store backed by one Azure Table Storage table.

    Pass a ``TableClient`` as ``client``, or a ``connection_string``, or an ``endpoint``
    (``https://<account>.table.core.windows.net``) with a ``credential`` (an
    ``AzureNamedKeyCredential``, ``AzureSasCredential`` or a token credential such as
    ``DefaultAzureCredential``). The client is created on first use.
    :meth:`create_table` creates the table.

    ``max_result_bytes`` defaults to 704 KiB, which fits Table Storage's 1 MiB entity limit
    as Azure and Azurite measure it.
    Service and connection errors are raised as
    :class:`~polyserve.errors.StoreUnavailableError`; an entity over the size limits as
    :class:`~polyserve.errors.RecordTooLargeError`; an entity the store cannot read as
    :class:`~polyserve.errors.CorruptRecordError`.
    """

    backend: ClassVar[str] = "Table Storage"
    record_noun: ClassVar[str] = "entity"
    result_limit: ClassVar[int] = _MAX_CHUNKS * CHUNK_BYTES
    requires: ClassVar[str] = "azure-data-tables"
    extra: ClassVar[str | None] = "polyserve-azure[tables]"

    def __init__(
        self,
        table_name: str,
        *,
        client: TableClient | None = None,
        connection_string: str | None = None,
        endpoint: str | None = None,
        credential: Any = None,
        max_result_bytes: int = _DEFAULT_MAX_RESULT_BYTES,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
    ) -> None:
        if client is None and not connection_string and not endpoint:
            raise ConfigurationError(
                "TableStore needs a client, a connection_string or an endpoint"
            )
        super().__init__(table_name, client=client, max_result_bytes=max_result_bytes)
        self.table_name = table_name
        self._connection_string = connection_string
        self._endpoint = endpoint
        self._credential = credential
        self._options: dict[str, Any] = {
            "connection_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "retry_total": max(max_attempts - 1, 0),
        }

    def _new_client(self) -> TableClient:
        from azure.data.tables import TableClient

        if self._connection_string:
            return TableClient.from_connection_string(
                self._connection_string, self.table_name, **self._options
            )
        assert self._endpoint is not None  # checked in __init__
        return TableClient(
            self._endpoint, self.table_name, credential=self._credential, **self._options
        )

    def _insert(self, record: Record, now: float) -> str | None:
        """An insert, which fails with 409 if the entity exists."""
        return _etag(self.client.create_entity(_entity(record)))

    def _replace(self, record: Record, version: str, now: float) -> str | None:
        """A replace conditional on the ETag."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        written = self.client.update_entity(
            _entity(record),
            mode=UpdateMode.REPLACE,
            etag=version,
            match_condition=MatchConditions.IfNotModified,
        )
        return _etag(written)

    def _complete(
        self, key: str, token: str, version: str, result: bytes, expires_at: float
    ) -> None:
        """A merge conditional on the ETag, with the result in chunks."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        chunks = [result[i : i + CHUNK_BYTES] for i in range(0, len(result), CHUNK_BYTES)]
        changes: dict[str, Any] = {
            "PartitionKey": _partition_key(key),
            "RowKey": _ROW_KEY,
            _STATUS: Status.COMPLETED.value,
            _EXPIRES_AT: float(expires_at),
            _RESULT_PARTS: len(chunks),
        }
        changes.update({f"{_RESULT}{i}": chunk for i, chunk in enumerate(chunks)})
        self.client.update_entity(
            changes,
            mode=UpdateMode.MERGE,
            etag=version,
            match_condition=MatchConditions.IfNotModified,
        )

    def _delete(self, key: str, token: str, version: str) -> bool:
        """A delete conditional on the ETag."""
        from azure.core import MatchConditions

        statuses: list[int] = []
        self.client.delete_entity(
            _partition_key(key),
            _ROW_KEY,
            etag=version,
            match_condition=MatchConditions.IfNotModified,
            raw_response_hook=lambda response: statuses.append(response.http_response.status_code),
        )
        # delete_entity() returns quietly when the entity is missing; the status tells.
        return statuses[-1:] != [404]

    def _read(self, key: str) -> tuple[Any, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.client.get_entity(_partition_key(key), _ROW_KEY)
        except ResourceNotFoundError:
            return None
        return entity, str(entity.metadata["etag"])

    def _fields(self, entity: Mapping[str, Any]) -> dict[str, object]:
        fields = {name: entity[prop] for name, prop in _PROPERTIES.items() if prop in entity}
        if entity.get(_STATUS) == Status.COMPLETED.value:
            parts = entity[_RESULT_PARTS]
            # bool is an int, but never a valid ResultParts.
            if not isinstance(parts, int) or isinstance(parts, bool):
                raise TypeError(f"property {_RESULT_PARTS!r} holds a {type(parts).__name__}")
            chunks = [entity[f"{_RESULT}{i}"] for i in range(parts)]
            if not all(isinstance(chunk, bytes) for chunk in chunks):
                raise TypeError(f"property {_RESULT!r}<n> holds no binary value")
            fields["result"] = b"".join(chunks)
        return fields

    def _failure(self, exc: Exception) -> Failure | None:
        from azure.core.exceptions import AzureError, HttpResponseError

        if isinstance(exc, HttpResponseError):
            if exc.status_code in (409, 412):  # the entity exists; its ETag changed
                return Failure.CONFLICT
            if exc.status_code == 404:
                return Failure.NOT_FOUND
            code = str(getattr(exc, "error_code", None) or "")
            if any(name in code or name in str(exc) for name in _TOO_LARGE):
                return Failure.TOO_LARGE
            return Failure.UNAVAILABLE
        # ServiceRequestError (cannot connect), ServiceResponseError (timeouts), and
        # credential errors.
        return Failure.UNAVAILABLE if isinstance(exc, AzureError) else None

    def _describe(self, exc: Exception) -> str:
        from azure.core.exceptions import HttpResponseError

        if isinstance(exc, HttpResponseError):
            code = str(getattr(exc, "error_code", None) or "")
            return f"failed: HTTP {exc.status_code} {code}".rstrip()
        return super()._describe(exc)

    def clear(self) -> None:
        """Delete every entity in the table (for tests: it lists the whole table)."""
        with self._errors():
            for entity in self.client.list_entities(select=["PartitionKey", "RowKey"]):
                self.client.delete_entity(entity["PartitionKey"], entity["RowKey"])

    def delete_expired(self, now: float | None = None, *, grace: float = 300.0) -> int:
        """Delete the records that had been dead for ``grace`` seconds at ``now``.

        ``now`` defaults to this host's clock. A record's times come from the clocks of
        the callers that wrote it, so a record is deleted only once it has been dead
        for ``grace`` seconds (default five minutes): a host whose clock runs ahead of
        a caller's by less than that never deletes that caller's live record.

        Table Storage has no TTL, so run this from a timer to keep the table small. Each
        delete is conditional on the ETag read, so a record taken over meanwhile stays.
        Returns the number of records deleted.

        Raises:
            ValueError: ``now`` is not finite, or ``grace`` is negative or not finite.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        now = float(time.time() if now is None else now)
        if not math.isfinite(now):
            raise ValueError(f"record times must be finite, got {now}")
        if not (math.isfinite(grace) and grace >= 0):
            raise ValueError(f"grace must be a finite number of seconds >= 0, got {grace}")
        now -= grace
        # Dead means COMPLETED and past ExpiresAt, or IN_PROGRESS and past LockExpiresAt. The
        # literals are formatted here: the client's @parameter substitution would turn 1.0
        # into "true".
        query = (
            f"({_STATUS} eq '{Status.COMPLETED.value}' and {_EXPIRES_AT} le {now!r})"
            f" or ({_STATUS} eq '{Status.IN_PROGRESS.value}' and {_LOCK_EXPIRES_AT} le {now!r})"
        )
        deleted = 0
        with self._errors():
            entities = self.client.query_entities(query, select=["PartitionKey", "RowKey"])
            for entity in entities:
                try:
                    self.client.delete_entity(
                        entity["PartitionKey"],
                        entity["RowKey"],
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                except HttpResponseError as exc:
                    if exc.status_code != 412:
                        raise
                else:
                    deleted += 1
        return deleted

    def create_table(self) -> None:
        """Create the table if it does not exist (for tests and local development)."""
        from azure.core.exceptions import ResourceExistsError

        with self._errors(), contextlib.suppress(ResourceExistsError):
            self.client.create_table()


def _partition_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _entity(record: Record) -> dict[str, Any]:
    """The entity of an IN_PROGRESS record."""
    entity: dict[str, Any] = {
        "PartitionKey": _partition_key(record.key),
        "RowKey": _ROW_KEY,
        _KEY: record.key,
        _STATUS: record.status.value,
        _TOKEN: record.token,
        _LOCK_EXPIRES_AT: float(record.lock_expires_at),
        _EXPIRES_AT: float(record.expires_at),
    }
    if record.fingerprint is not None:
        entity[_FINGERPRINT] = record.fingerprint
    return entity


def _etag(written: Mapping[str, Any]) -> str | None:
    etag = written.get("etag")
    return etag if isinstance(etag, str) else None
