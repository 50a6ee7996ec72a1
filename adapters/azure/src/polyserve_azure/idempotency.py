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
from typing import TYPE_CHECKING, Any, TypeVar

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

    from azure.data.tables import TableClient

__all__ = ["CHUNK_BYTES", "TableStore"]

_T = TypeVar("_T")

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

# Each retry follows another writer's successful write to the same entity.
_ATTEMPTS = 8

# ETags remembered between acquire() and complete()/release(), at most.
_ETAG_CACHE_SIZE = 1024

# Service error codes for an entity or property over the size limits.
_TOO_LARGE = ("EntityTooLarge", "PropertyValueTooLarge", "RequestBodyTooLarge")


class TableStore:
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
        if not 0 < max_result_bytes <= _MAX_CHUNKS * CHUNK_BYTES:
            raise ConfigurationError(
                f"max_result_bytes must be between 1 and {_MAX_CHUNKS * CHUNK_BYTES} "
                f"(Table Storage's entity size limit), got {max_result_bytes}"
            )
        self.table_name = table_name
        self.max_result_bytes = max_result_bytes
        self._client: LazyClient[TableClient] = LazyClient(self._new_client, client)
        self._connection_string = connection_string
        self._endpoint = endpoint
        self._credential = credential
        self._options: dict[str, Any] = {
            "connection_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "retry_total": max(max_attempts - 1, 0),
        }
        # ETags of the entities this process wrote in acquire(), by (key, token), so that
        # complete() and release() can write without reading first.
        self._etags: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return f"TableStore({self.table_name!r})"

    @property
    def client(self) -> TableClient:
        """The ``TableClient``, created on first use unless one was given."""
        return self._client.get()

    def _new_client(self) -> TableClient:
        try:
            from azure.data.tables import TableClient
        except ImportError as exc:
            raise MissingDependencyError(
                "azure-data-tables", feature="TableStore", extra="polyserve-azure[tables]"
            ) from exc
        with self._errors():
            if self._connection_string:
                return TableClient.from_connection_string(
                    self._connection_string, self.table_name, **self._options
                )
            assert self._endpoint is not None  # checked in __init__
            return TableClient(
                self._endpoint, self.table_name, credential=self._credential, **self._options
            )

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

        One insert when the key is free; a hit costs the insert and a read; taking over a
        dead record costs one more, conditional, write.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        entity: dict[str, Any] = {
            "PartitionKey": _partition_key(key),
            "RowKey": _ROW_KEY,
            _KEY: key,
            _STATUS: Status.IN_PROGRESS.value,
            _TOKEN: token,
            _LOCK_EXPIRES_AT: _double(lock_expires_at),
            _EXPIRES_AT: _double(expires_at),
        }
        if fingerprint is not None:
            entity[_FINGERPRINT] = fingerprint
        with self._errors():
            for _ in range(_ATTEMPTS):
                try:
                    written = self.client.create_entity(entity)
                except HttpResponseError as exc:
                    if exc.status_code != 409:
                        raise
                else:
                    self._remember(key, token, written)
                    return None
                existing = self._read(key)
                if existing is None:
                    continue  # released since the insert failed: insert again
                record, etag = existing
                if record.token == token and record.status is Status.IN_PROGRESS:
                    # The client retried an insert whose first attempt had landed.
                    self._remember(key, token, {"etag": etag})
                    return None
                if is_live(record, now):
                    return record
                try:
                    written = self.client.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                except HttpResponseError as exc:
                    # 412: someone else replaced it first; 404: it was deleted. Either
                    # way, look again.
                    if exc.status_code not in (404, 412):
                        raise
                else:
                    self._remember(key, token, written)
                    return None
        raise StoreUnavailableError(
            f"Table Storage idempotency store: key kept changing over {_ATTEMPTS} attempts"
        )

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Mark the record COMPLETED with ``result`` iff it is IN_PROGRESS with ``token``.

        A merge conditional on the entity's ETag. Returns False when the record is gone or
        owned by another token. Raises :class:`~polyserve.errors.RecordTooLargeError` when
        the result does not fit in an entity.
        """
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        chunks = [result[i : i + CHUNK_BYTES] for i in range(0, len(result), CHUNK_BYTES)]
        if len(chunks) > _MAX_CHUNKS:
            raise RecordTooLargeError(
                f"result of {len(result)} bytes exceeds Table Storage's entity size limit"
            )
        changes: dict[str, Any] = {
            "PartitionKey": _partition_key(key),
            "RowKey": _ROW_KEY,
            _STATUS: Status.COMPLETED.value,
            _EXPIRES_AT: _double(expires_at),
            _RESULT_PARTS: len(chunks),
        }
        changes.update({f"{_RESULT}{i}": chunk for i, chunk in enumerate(chunks)})

        def write(etag: str) -> bool:
            self.client.update_entity(
                changes,
                mode=UpdateMode.MERGE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
            return True

        return self._owner_write(key, token, write)

    def release(self, key: str, *, token: str) -> bool:
        """Delete the record iff it is IN_PROGRESS with ``token``: a delete conditional on its
        ETag."""
        from azure.core import MatchConditions

        def delete(etag: str) -> bool:
            statuses: list[int] = []
            self.client.delete_entity(
                _partition_key(key),
                _ROW_KEY,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
                raw_response_hook=lambda response: statuses.append(
                    response.http_response.status_code
                ),
            )
            # delete_entity() returns quietly when the entity is missing; the status tells.
            return statuses[-1:] != [404]

        return self._owner_write(key, token, delete)

    def get(self, key: str) -> Record | None:
        """The stored record, live or not; None when there is none."""
        with self._errors():
            existing = self._read(key)
        return None if existing is None else existing[0]

    def clear(self) -> None:
        """Delete every entity in the table (for tests: it lists the whole table)."""
        with self._errors():
            for entity in self.client.list_entities(select=["PartitionKey", "RowKey"]):
                self.client.delete_entity(entity["PartitionKey"], entity["RowKey"])

    def delete_expired(self, now: float | None = None) -> int:
        """Delete the records that are dead at ``now`` (default: the current time).

        Table Storage has no TTL, so run this from a timer to keep the table small. Each
        delete is conditional on the ETag read, so a record taken over meanwhile stays.
        Returns the number of records deleted.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        now = _double(time.time() if now is None else now)
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

    def close(self) -> None:
        """Close the connections of a client this store created (a given client stays open)."""
        self._client.close()

    def create_table(self) -> None:
        """Create the table if it does not exist (for tests and local development)."""
        from azure.core.exceptions import ResourceExistsError

        with self._errors(), contextlib.suppress(ResourceExistsError):
            self.client.create_table()

    def _owner_write(self, key: str, token: str, write: Callable[[str], bool]) -> bool:
        """Run ``write(etag)`` against the entity iff it is IN_PROGRESS with ``token``.

        ``write`` returns False when the entity is missing. Tries the ETag remembered from
        acquire() first, then reads the entity; retries while the entity changes under it.
        Returns False if the token does not own the record.
        """
        from azure.core.exceptions import HttpResponseError

        etag = self._etags.pop((key, token), None)
        with self._errors():
            for _ in range(_ATTEMPTS):
                if etag is None:
                    existing = self._read(key)
                    if existing is None:
                        return False
                    record, etag = existing
                    if record.status is not Status.IN_PROGRESS or record.token != token:
                        return False
                try:
                    return write(etag)
                except HttpResponseError as exc:
                    if exc.status_code == 404:
                        return False
                    if exc.status_code != 412:
                        raise
                    etag = None  # changed since: read it and check the token again
        raise StoreUnavailableError(
            f"Table Storage idempotency store: key kept changing over {_ATTEMPTS} attempts"
        )

    def _remember(self, key: str, token: str, written: Mapping[str, Any]) -> None:
        etag = written.get("etag")
        if isinstance(etag, str):
            # complete() or release() normally takes the entry out again; the bound only
            # matters if callers stop calling them. Forgetting an ETag costs one read.
            if len(self._etags) >= _ETAG_CACHE_SIZE:
                self._etags.clear()
            self._etags[(key, token)] = etag

    def _read(self, key: str) -> tuple[Record, str] | None:
        """The record and its ETag, or None. Call inside ``_errors()``."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.client.get_entity(_partition_key(key), _ROW_KEY)
        except ResourceNotFoundError:
            return None
        record = _decode(entity)
        if record.key != key:
            raise CorruptRecordError("Table Storage idempotency record holds another key")
        return record, str(entity.metadata["etag"])

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate azure-core's exceptions into polyserve's."""
        from azure.core.exceptions import AzureError, HttpResponseError

        try:
            yield
        except HttpResponseError as exc:
            code = str(getattr(exc, "error_code", None) or "")
            if any(name in code or name in str(exc) for name in _TOO_LARGE):
                raise RecordTooLargeError(
                    "Table Storage idempotency record exceeds the entity size limits"
                ) from exc
            # Any other answer (throttling, a missing table, a refused credential) fails the
            # invocation like an outage does, so the platform retries or reports it.
            raise StoreUnavailableError(
                f"Table Storage idempotency store failed: HTTP {exc.status_code} {code}".rstrip()
            ) from exc
        except AzureError as exc:
            # ServiceRequestError (cannot connect), ServiceResponseError (timeouts), and
            # credential errors.
            raise StoreUnavailableError(
                f"Table Storage idempotency store unavailable: {type(exc).__name__}"
            ) from exc


def _partition_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _double(value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"record times must be finite, got {value}")
    return value


def _decode(entity: Mapping[str, Any]) -> Record:
    """The record an entity holds; raises CorruptRecordError when it holds none."""
    try:
        status = Status(_typed(entity, _STATUS, str))
        fingerprint = _typed(entity, _FINGERPRINT, str) if _FINGERPRINT in entity else None
        result: bytes | None = None
        if status is Status.COMPLETED:
            parts = _typed(entity, _RESULT_PARTS, int)
            result = b"".join(_typed(entity, f"{_RESULT}{i}", bytes) for i in range(parts))
        return Record(
            key=_typed(entity, _KEY, str),
            status=status,
            token=_typed(entity, _TOKEN, str),
            fingerprint=fingerprint,
            lock_expires_at=_time(entity, _LOCK_EXPIRES_AT),
            expires_at=_time(entity, _EXPIRES_AT),
            result=result,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptRecordError(
            f"Table Storage idempotency record cannot be read: {type(exc).__name__}: {exc}"
        ) from exc


def _typed(entity: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    value = entity[name]
    # bool is an int, but never a valid ResultParts.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"property {name!r} holds a {type(value).__name__}")
    return value


def _time(entity: Mapping[str, Any], name: str) -> float:
    value = entity[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"property {name!r} holds a {type(value).__name__}")
    return float(value)
