"""Idempotency records in Cloud Firestore: ``FirestoreStore``.

One document per key in one collection. Keys may hold ``/``, which document IDs cannot, so
the document ID is the key's SHA-256 (hex), which also spreads writes evenly; the key itself
is kept in a field::

    <collection>/<sha256(key)>
        key              string     "<function>#<key>"
        status           string     "in_progress" | "completed"
        token            string     owner token written by acquire()
        fingerprint      string     payload hash, or null
        lock_expires_at  number     epoch seconds
        expires_at       number     epoch seconds
        result           bytes      serialised result (COMPLETED only)
        expire_at        timestamp  for a Firestore TTL policy, clean-up only

Every write that depends on what is stored is conditional, so concurrent invocations agree
on one owner:

- ``acquire`` creates the document, which fails if it exists. On that conflict it reads
  the document (Firestore reads are strongly consistent): a live record is returned, a dead
  one is overwritten with a precondition on the ``update_time`` just read. If another
  writer got there first the precondition fails, and the store reads the winner's record.
- ``complete`` and ``release`` read the document, check that it is IN_PROGRESS with the
  caller's token, and write or delete it with the same ``update_time`` precondition.

A precondition gives the atomicity of a read-write transaction for one document with fewer
round trips (a transaction also needs BeginTransaction and Commit) and without the lock
contention that transactions on one hot document meet. Liveness is decided by comparing the
stored times with ``now``; a TTL policy on ``expire_at`` only removes old documents.

google-cloud-firestore is imported on first use; install ``polyserve-gcp[firestore]``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import math
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

__all__ = ["DOCUMENT_SIZE_LIMIT", "FirestoreStore"]

DOCUMENT_SIZE_LIMIT = 1024 * 1024
"""Firestore's maximum document size in bytes."""

# Room for the document name, the key and the other fields.
_DEFAULT_MAX_RESULT_BYTES = DOCUMENT_SIZE_LIMIT - 32 * 1024

_KEY = "key"
_STATUS = "status"
_TOKEN = "token"
_FINGERPRINT = "fingerprint"
_LOCK_EXPIRES_AT = "lock_expires_at"
_EXPIRES_AT = "expires_at"
_RESULT = "result"

# How Firestore and its emulator word "document too large" and "value too large".
_TOO_LARGE = ("maximum allowed size", "maximum entity size", "is longer than")

# Each retry follows another writer's successful write to the same document.
_ATTEMPTS = 8

_T = TypeVar("_T")


class FirestoreStore:
    """An idempotency store backed by one Firestore collection (native mode).

    Pass a ``google.cloud.firestore.Client`` as ``client``, or let the store create one on
    first use for ``project`` and ``database`` (credentials come from Application Default
    Credentials; ``FIRESTORE_EMULATOR_HOST`` selects the emulator). ``timeout`` bounds each
    call, retries of transient errors included.

    ``ttl_field`` names the timestamp field for a Firestore TTL policy (None to write none).
    Service and connection errors are raised as
    :class:`~polyserve.errors.StoreUnavailableError`; a document over Firestore's 1 MiB limit
    as :class:`~polyserve.errors.RecordTooLargeError`; a document the store cannot read as
    :class:`~polyserve.errors.CorruptRecordError`.
    """

    def __init__(
        self,
        collection: str,
        *,
        client: Any = None,
        project: str | None = None,
        database: str | None = None,
        ttl_field: str | None = "expire_at",
        max_result_bytes: int = _DEFAULT_MAX_RESULT_BYTES,
        timeout: float = 10.0,
    ) -> None:
        if not collection or "/" in collection:
            raise ConfigurationError(
                f"FirestoreStore needs a top-level collection name, got {collection!r}"
            )
        if not 0 < max_result_bytes < DOCUMENT_SIZE_LIMIT:
            raise ConfigurationError(
                f"max_result_bytes must be between 1 and {DOCUMENT_SIZE_LIMIT - 1} "
                f"(Firestore's document size limit), got {max_result_bytes}"
            )
        fields = {_KEY, _STATUS, _TOKEN, _FINGERPRINT, _LOCK_EXPIRES_AT, _EXPIRES_AT, _RESULT}
        if ttl_field in fields:
            raise ConfigurationError(f"ttl_field must not be one of {sorted(fields)}")
        self.collection = collection
        self.ttl_field = ttl_field
        self.max_result_bytes = max_result_bytes
        self._project = project
        self._database = database
        self._timeout = timeout
        # google-cloud-firestore's client is typed loosely; it stays Any at this boundary.
        self._client: LazyClient[Any] = LazyClient(self._new_client, client)
        self._call_options: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"FirestoreStore({self.collection!r})"

    @property
    def client(self) -> Any:
        """The ``google.cloud.firestore.Client``, created on first use unless one was given."""
        return self._client.get()

    def _new_client(self) -> Any:
        try:
            from google.cloud import firestore
        except ImportError as exc:
            raise MissingDependencyError(
                "google-cloud-firestore", feature="FirestoreStore", extra="polyserve-gcp[firestore]"
            ) from exc
        with self._errors():
            return firestore.Client(project=self._project, database=self._database)

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

        One ``create`` when the key is free; a hit costs the create and a read; taking over
        a dead record costs one more, conditional, write.
        """
        from google.api_core.exceptions import Conflict, FailedPrecondition, NotFound
        from google.cloud.firestore import DELETE_FIELD

        record = Record(
            key, Status.IN_PROGRESS, token, fingerprint, lock_expires_at, expires_at, None
        )
        data = _encode_record(record, self.ttl_field)
        document = self._document(key)
        with self._errors():
            for _ in range(_ATTEMPTS):
                try:
                    document.create(data, **self._options())
                except Conflict:
                    pass
                else:
                    return None
                snapshot = document.get(**self._options())
                if not snapshot.exists:
                    continue  # released since the create failed: create again
                existing = self._decode(snapshot)
                if existing.token == token and existing.status is Status.IN_PROGRESS:
                    return None  # a retried create whose first attempt had landed
                if is_live(existing, now):
                    return existing
                precondition = self.client.write_option(last_update_time=snapshot.update_time)
                try:
                    document.update(
                        {**data, _RESULT: DELETE_FIELD}, option=precondition, **self._options()
                    )
                except (FailedPrecondition, NotFound):
                    continue  # someone else wrote it first: read the winner's record
                return None
        raise StoreUnavailableError(
            f"Firestore idempotency store: key kept changing over {_ATTEMPTS} attempts"
        )

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Mark the record COMPLETED with ``result`` iff it is IN_PROGRESS with ``token``.

        A read, then an update with an ``update_time`` precondition. Returns False when the
        record is gone or owned by another token.
        """
        changes: dict[str, Any] = {
            _STATUS: Status.COMPLETED.value,
            _RESULT: bytes(result),
            _EXPIRES_AT: _number(expires_at),
        }
        if self.ttl_field is not None:
            changes[self.ttl_field] = _timestamp(expires_at)
        return self._owner_write(
            key,
            token,
            lambda document, option: document.update(changes, option=option, **self._options()),
        )

    def release(self, key: str, *, token: str) -> bool:
        """Delete the record iff it is IN_PROGRESS with ``token``: a read, then a delete with
        an ``update_time`` precondition."""
        return self._owner_write(
            key,
            token,
            lambda document, option: document.delete(option=option, **self._options()),
        )

    def get(self, key: str) -> Record | None:
        """The stored record, live or not; None when there is none."""
        with self._errors():
            snapshot = self._document(key).get(**self._options())
            return self._decode(snapshot) if snapshot.exists else None

    def clear(self) -> None:
        """Delete every document in the collection (for tests)."""
        with self._errors():
            for document in self.client.collection(self.collection).list_documents():
                document.delete(**self._options())

    def close(self) -> None:
        """Close the channel of a client this store created (a given client stays open)."""
        self._client.close()

    def _owner_write(self, key: str, token: str, write: Callable[[Any, Any], object]) -> bool:
        """Run ``write(document, precondition)`` iff the record is IN_PROGRESS with ``token``."""
        from google.api_core.exceptions import FailedPrecondition, NotFound

        document = self._document(key)
        with self._errors():
            for _ in range(_ATTEMPTS):
                snapshot = document.get(**self._options())
                if not snapshot.exists:
                    return False
                record = self._decode(snapshot)
                if record.status is not Status.IN_PROGRESS or record.token != token:
                    return False
                option = self.client.write_option(last_update_time=snapshot.update_time)
                try:
                    write(document, option)
                except NotFound:
                    return False
                except FailedPrecondition:
                    continue  # changed since it was read: check the token again
                return True
        raise StoreUnavailableError(
            f"Firestore idempotency store: key kept changing over {_ATTEMPTS} attempts"
        )

    def _document(self, key: str) -> Any:
        return self.client.collection(self.collection).document(_document_id(key))

    def _decode(self, snapshot: Any) -> Record:
        record = _decode_record(snapshot.to_dict())
        if _document_id(record.key) != snapshot.id:
            raise CorruptRecordError("Firestore idempotency record holds another key")
        return record

    def _options(self) -> dict[str, Any]:
        """Keyword arguments for every call: ``timeout`` bounds it, retries included."""
        options = self._call_options
        if options is None:
            from google.api_core.retry import Retry, if_transient_error

            retry = Retry(
                predicate=if_transient_error, initial=0.1, maximum=1.0, timeout=self._timeout
            )
            options = self._call_options = {"retry": retry, "timeout": self._timeout}
        return options

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate google-api-core's and google-auth's exceptions into polyserve's."""
        from google.api_core.exceptions import GoogleAPIError, InvalidArgument
        from google.auth.exceptions import GoogleAuthError

        try:
            yield
        except InvalidArgument as exc:
            message = str(exc.message).lower()
            if any(phrase in message for phrase in _TOO_LARGE):
                raise RecordTooLargeError(
                    "Firestore idempotency record exceeds the 1 MiB document size limit"
                ) from exc
            raise StoreUnavailableError(f"Firestore idempotency store failed: {exc.code}") from exc
        except (GoogleAPIError, GoogleAuthError) as exc:
            # Unavailable (cannot connect), DeadlineExceeded and RetryError (timeouts),
            # refused or missing credentials, a missing database: the invocation fails like
            # an outage, so the platform retries or reports it.
            raise StoreUnavailableError(
                f"Firestore idempotency store unavailable: {type(exc).__name__}"
            ) from exc


def _encode_record(record: Record, ttl_field: str | None) -> dict[str, Any]:
    """The Firestore fields for ``record``: ``result`` only when it has one, and a TTL
    timestamp in ``ttl_field`` unless that is None."""
    data: dict[str, Any] = {
        _KEY: record.key,
        _STATUS: record.status.value,
        _TOKEN: record.token,
        _FINGERPRINT: record.fingerprint,
        _LOCK_EXPIRES_AT: _number(record.lock_expires_at),
        _EXPIRES_AT: _number(record.expires_at),
    }
    if record.result is not None:
        data[_RESULT] = bytes(record.result)
    if ttl_field is not None:
        data[ttl_field] = _timestamp(max(record.lock_expires_at, record.expires_at))
    return data


def _decode_record(data: Mapping[str, Any] | None) -> Record:
    """The record stored in a document's fields.

    Raises :class:`~polyserve.errors.CorruptRecordError` when they do not hold one.
    """
    try:
        if data is None:
            raise TypeError("document has no fields")
        status = Status(_typed(data, _STATUS, str))
        fingerprint = data.get(_FINGERPRINT)
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise TypeError(f"field 'fingerprint' holds a {type(fingerprint).__name__}")
        result = _typed(data, _RESULT, bytes) if status is Status.COMPLETED else None
        return Record(
            key=_typed(data, _KEY, str),
            status=status,
            token=_typed(data, _TOKEN, str),
            fingerprint=fingerprint,
            lock_expires_at=_time(data, _LOCK_EXPIRES_AT),
            expires_at=_time(data, _EXPIRES_AT),
            result=result,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptRecordError(
            f"Firestore idempotency record cannot be read: {type(exc).__name__}: {exc}"
        ) from exc


def _typed(data: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    value = data[name]
    if not isinstance(value, kind):
        raise TypeError(f"field {name!r} holds a {type(value).__name__}")
    return value


def _time(data: Mapping[str, Any], name: str) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"field {name!r} holds a {type(value).__name__}")
    return float(value)


def _number(value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"record times must be finite, got {value}")
    return value


def _timestamp(seconds: float) -> datetime.datetime:
    """The TTL timestamp for ``seconds``, rounded up and capped at Firestore's latest."""
    latest = 253402300799  # 9999-12-31T23:59:59Z
    return datetime.datetime.fromtimestamp(
        min(math.ceil(seconds), latest), tz=datetime.timezone.utc
    )


def _document_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
