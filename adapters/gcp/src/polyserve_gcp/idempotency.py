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
        ttl_offset       number     whole seconds from the caller's clock to this host's
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

Firestore's TTL compares ``expire_at`` with Google's clock, which the caller's ``now`` need
not follow (a test's fixed clock, a host whose clock is behind). A timestamp taken from the
caller's times could let TTL delete a record that is still live, and a second caller would
then take the key. So ``expire_at`` is the record's remaining life, measured from the
caller's ``now``, added to this host's wall clock; ``ttl_offset`` keeps the difference
between the two clocks for ``complete``, which has no ``now``.

google-cloud-firestore is imported on first use; install ``polyserve-gcp[firestore]``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from polyserve.errors import ConfigurationError
from polyserve.idempotency.store import ConditionalStore, Failure, Record, Status, ttl_offset

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DOCUMENT_SIZE_LIMIT", "FirestoreStore"]

DOCUMENT_SIZE_LIMIT = 1024 * 1024
"""Firestore's maximum document size in bytes."""

# Room for the document name, the key and the other fields.
_DEFAULT_MAX_RESULT_BYTES = DOCUMENT_SIZE_LIMIT - 32 * 1024

# Each field is named as the record's attribute, and one more keeps the clock offset.
_OFFSET_FIELD = "ttl_offset"
_FIELDS = frozenset({*(f.name for f in dataclasses.fields(Record)), _OFFSET_FIELD})

# How Firestore and its emulator word "document too large" and "value too large".
_TOO_LARGE = ("maximum allowed size", "maximum entity size", "is longer than")


class _Version(NamedTuple):
    """What a read learns for the writes that follow it."""

    update_time: Any
    """The document's update time, for the writes' precondition."""

    ttl_offset: int
    """The clock offset its acquire stored (0 when there is none)."""


# google-cloud-firestore's client and its update times are typed loosely; they stay Any at
# this boundary.
class FirestoreStore(ConditionalStore[Any, _Version]):
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

    backend: ClassVar[str] = "Firestore"
    record_noun: ClassVar[str] = "document"
    result_limit: ClassVar[int] = DOCUMENT_SIZE_LIMIT - 1
    requires: ClassVar[str] = "google-cloud-firestore"
    extra: ClassVar[str | None] = "polyserve-gcp[firestore]"

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
        super().__init__(collection, client=client, max_result_bytes=max_result_bytes)
        if ttl_field in _FIELDS:
            raise ConfigurationError(f"ttl_field must not be one of {sorted(_FIELDS)}")
        self.collection = collection
        self.ttl_field = ttl_field
        self._project = project
        self._database = database
        self._timeout = timeout
        self._call_options: dict[str, Any] | None = None

    def _new_client(self) -> Any:
        from google.cloud import firestore

        return firestore.Client(project=self._project, database=self._database)

    def _insert(self, record: Record, now: float) -> None:
        """A ``create``, which fails with ``AlreadyExists`` if the document exists.

        It keeps no version, so ``complete`` and ``release`` read the document first.
        """
        document = _encode_record(record, self.ttl_field, ttl_offset(now))
        self._document(record.key).create(document, **self._options())

    def _replace(self, record: Record, version: _Version, now: float) -> None:
        """An ``update`` with the precondition that the document's update time is
        ``version``'s."""
        from google.cloud.firestore import DELETE_FIELD

        self._document(record.key).update(
            {**_encode_record(record, self.ttl_field, ttl_offset(now)), "result": DELETE_FIELD},
            option=self.client.write_option(last_update_time=version.update_time),
            **self._options(),
        )

    def _complete(
        self, key: str, token: str, version: _Version, result: bytes, expires_at: float
    ) -> None:
        """An ``update`` with the update time precondition."""
        changes: dict[str, Any] = {
            "status": Status.COMPLETED.value,
            "result": bytes(result),
            "expires_at": float(expires_at),
        }
        if self.ttl_field is not None:
            changes[self.ttl_field] = _timestamp(expires_at, version.ttl_offset)
        self._document(key).update(
            changes,
            option=self.client.write_option(last_update_time=version.update_time),
            **self._options(),
        )

    def _delete(self, key: str, token: str, version: _Version) -> bool:
        """A ``delete`` with the update time precondition."""
        self._document(key).delete(
            option=self.client.write_option(last_update_time=version.update_time),
            **self._options(),
        )
        return True

    def _read(self, key: str) -> tuple[Any, Any] | None:
        """A ``get``: Firestore reads are strongly consistent."""
        snapshot = self._document(key).get(**self._options())
        if not snapshot.exists:
            return None
        data = snapshot.to_dict()
        # A document an older release wrote has no offset: its times are taken as they are.
        offset = (data or {}).get(_OFFSET_FIELD, 0)
        if isinstance(offset, bool) or not isinstance(offset, int):
            offset = 0
        return data, _Version(snapshot.update_time, offset)

    def _fields(self, data: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if data is None:
            raise TypeError("document has no fields")
        return data

    def _failure(self, exc: Exception) -> Failure | None:
        from google.api_core.exceptions import (
            Conflict,
            FailedPrecondition,
            GoogleAPIError,
            InvalidArgument,
            NotFound,
        )
        from google.auth.exceptions import GoogleAuthError

        if isinstance(exc, (Conflict, FailedPrecondition)):  # it exists; it changed
            return Failure.CONFLICT
        if isinstance(exc, NotFound):
            return Failure.NOT_FOUND
        if isinstance(exc, InvalidArgument) and any(
            phrase in str(exc.message).lower() for phrase in _TOO_LARGE
        ):
            return Failure.TOO_LARGE
        # Unavailable (cannot connect), DeadlineExceeded and RetryError (timeouts), refused
        # or missing credentials, a missing database.
        return Failure.UNAVAILABLE if isinstance(exc, (GoogleAPIError, GoogleAuthError)) else None

    def _describe(self, exc: Exception) -> str:
        from google.api_core.exceptions import InvalidArgument

        if isinstance(exc, InvalidArgument):
            return f"failed: {exc.code}"
        return super()._describe(exc)

    def clear(self) -> None:
        """Delete every document in the collection (for tests)."""
        with self._errors():
            for document in self.client.collection(self.collection).list_documents():
                document.delete(**self._options())

    def _document(self, key: str) -> Any:
        return self.client.collection(self.collection).document(_document_id(key))

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


def _encode_record(record: Record, ttl_field: str | None, offset: int = 0) -> dict[str, Any]:
    """The Firestore fields for ``record``: ``result`` only when it has one, and unless
    ``ttl_field`` is None, a TTL timestamp in it and ``ttl_offset``, the ``offset`` in
    seconds from the caller's clock to this host's."""
    data: dict[str, Any] = {
        "key": record.key,
        "status": record.status.value,
        "token": record.token,
        "fingerprint": record.fingerprint,
        "lock_expires_at": float(record.lock_expires_at),
        "expires_at": float(record.expires_at),
    }
    if record.result is not None:
        data["result"] = bytes(record.result)
    if ttl_field is not None:
        data[_OFFSET_FIELD] = offset
        data[ttl_field] = _timestamp(max(record.lock_expires_at, record.expires_at), offset)
    return data


def _timestamp(seconds: float, offset: int = 0) -> datetime.datetime:
    """The TTL timestamp for ``seconds`` on the caller's clock moved by ``offset`` to this
    host's, rounded up and kept within the timestamps Firestore accepts."""
    latest = 253402300799  # 9999-12-31T23:59:59Z
    return datetime.datetime.fromtimestamp(
        max(0, min(math.ceil(seconds) + offset, latest)), tz=datetime.timezone.utc
    )


def _document_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
