"""The record a store keeps per idempotency key, the protocol every store implements, and
``ConditionalStore``, the base of the stores kept in a database reached through a client.

A key moves through three states::

    (absent) --acquire--> IN_PROGRESS --complete--> COMPLETED --expires_at--> (expired)
                              |   \\--release--> (absent)
                              \\--lock_expires_at--> (expired: the next acquire takes it)

An expired record is treated exactly as an absent one. Liveness is always decided by
comparing ``expires_at`` / ``lock_expires_at`` with the ``now`` the caller passes, never by
a backend's own TTL feature, which stores may use for cleanup only.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import math
import threading
import time
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Protocol,
    TypeVar,
    cast,
    runtime_checkable,
)

from polyserve.errors import ConfigurationError, MissingDependencyError, PolyserveError
from polyserve.idempotency.errors import (
    CorruptRecordError,
    RecordTooLargeError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

_C = TypeVar("_C")
_V = TypeVar("_V")

__all__ = [
    "AsyncStore",
    "ConditionalStore",
    "Failure",
    "LazyClient",
    "Record",
    "Status",
    "Store",
    "is_live",
    "ttl_offset",
]


class Status(str, enum.Enum):
    """The state of a stored key."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Record:
    """What a store holds for one key.

    ``key`` is already namespaced by the decorator (``"<module>.<qualname>#<key>"``).
    ``token`` is the random owner token written by ``acquire``; it guards ``complete`` and
    ``release``. ``fingerprint`` is a hash of the payload, checked on every hit.
    Timestamps are epoch seconds from the decorator's clock. ``result`` is the serialised
    result of a COMPLETED record (``None`` while IN_PROGRESS).
    """

    key: str
    status: Status
    token: str
    fingerprint: str | None
    lock_expires_at: float
    expires_at: float
    result: bytes | None = None


def is_live(record: Record, now: float) -> bool:
    """True while ``record`` still holds its key at time ``now``.

    A COMPLETED record lives until ``expires_at``; an IN_PROGRESS one until its lock
    expires at ``lock_expires_at``. A record that is not live is treated as absent.
    """
    if record.status is Status.COMPLETED:
        return record.expires_at > now
    return record.lock_expires_at > now


def ttl_offset(now: float, host_time: float | None = None) -> int:
    """Whole seconds from a caller's clock reading ``now`` to this host's clock.

    For stores whose database deletes expired items by its own clock (DynamoDB and
    Firestore TTL): a record's end on the caller's clock plus this offset is a TTL that
    never comes before that end on this host's clock, which the database is assumed to
    follow. Rounded up. ``host_time`` is this host's reading (``time.time()`` if not given).
    """
    return math.ceil((time.time() if host_time is None else host_time) - now)


@runtime_checkable
class Store(Protocol):
    """Where idempotency records live. Every method is one atomic operation.

    Stores map their client's errors to ``StoreUnavailableError`` (unreachable, timed
    out) or ``CorruptRecordError`` (a stored record that cannot be read back).
    """

    max_result_bytes: int
    """The largest serialised result ``complete`` accepts; the decorator checks it first."""

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
        """Take ``key`` unless a live record holds it.

        Atomically: if no live record exists (absent, COMPLETED with ``expires_at <= now``
        or IN_PROGRESS with ``lock_expires_at <= now``), write IN_PROGRESS with ``token``
        and return ``None``: the caller owns the key. Otherwise write nothing and return
        the live record.
        """
        ...

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Mark ``key`` COMPLETED with ``result`` iff it is still IN_PROGRESS with ``token``.

        Returns ``False`` when the token no longer matches: the lock expired and another
        caller took the key over (or the record was cleaned up).
        """
        ...

    def release(self, key: str, *, token: str) -> bool:
        """Delete ``key`` iff it is still IN_PROGRESS with ``token`` (the handler raised)."""
        ...

    def get(self, key: str) -> Record | None:
        """The stored record, live or not, or ``None``. Used to wait for an in-flight result.

        A store may already have cleaned up a record that is no longer live.
        """
        ...

    def clear(self) -> None:
        """Remove every record of this store (its table, file or key prefix). For tests."""
        ...


class AsyncStore(Protocol):
    """A store whose database is reached asynchronously (a Workers binding).

    ``@idempotent`` on an ``async def`` function awaits these methods, which keep the
    meaning of ``Store``'s of the same name; decorating a sync function with such a
    store is a ``ConfigurationError``. Such a store may refuse the blocking methods.
    """

    max_result_bytes: int

    async def acquire_async(
        self,
        key: str,
        *,
        token: str,
        fingerprint: str | None,
        lock_expires_at: float,
        expires_at: float,
        now: float,
    ) -> Record | None:
        """``Store.acquire``."""
        ...

    async def complete_async(
        self, key: str, *, token: str, result: bytes, expires_at: float
    ) -> bool:
        """``Store.complete``."""
        ...

    async def release_async(self, key: str, *, token: str) -> bool:
        """``Store.release``."""
        ...

    async def get_async(self, key: str) -> Record | None:
        """``Store.get``."""
        ...


class LazyClient(Generic[_C]):
    """A store's client, created on first use (once, even when threads race).

    A client passed in is used as is and never closed here; one this object
    created is closed by ``close()``. Stores use it so that constructing a store
    neither imports its client library nor opens a connection.
    """

    __slots__ = ("_client", "_factory", "_lock", "_owned")

    def __init__(self, factory: Callable[[], _C], client: _C | None = None) -> None:
        self._factory = factory
        self._client = client
        self._owned = client is None
        self._lock = threading.Lock()

    def get(self) -> _C:
        """The client, created by the factory on the first call."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return client

    def close(self) -> None:
        """Close the client if this object created it; the next ``get`` creates a new one."""
        with self._lock:
            client = self._client
            if self._owned:
                self._client = None
        if self._owned and client is not None:
            client.close()  # type: ignore[attr-defined]  # every SDK client used here has close()


class Failure(enum.Enum):
    """What an exception from a store's client means to ``ConditionalStore``.

    A store's ``_failure`` hook sorts its SDK's exceptions into these kinds. CONFLICT and
    NOT_FOUND steer the retry loops; where the base does not expect them, and for
    UNAVAILABLE, the operation raises ``StoreUnavailableError``.
    """

    CONFLICT = "conflict"
    """A conditional write's condition failed: an insert found the key taken, or the record
    changed since the version the write named (for an unversioned store: it is no longer
    the caller's)."""

    NOT_FOUND = "not_found"
    """A write named a record that does not exist."""

    TOO_LARGE = "too_large"
    """The record is over the backend's size limits: raised as ``RecordTooLargeError``."""

    UNAVAILABLE = "unavailable"
    """Any other error of the client or the service: no connection, a timeout, throttling,
    refused credentials, a missing table."""


# A write that loses a race is retried. Each retry follows another writer's successful
# write to the same record, so running out means the key is fought over without end.
_ATTEMPTS = 8

# Versions remembered from acquire() for complete() and release(), at most.
_VERSIONS_KEPT = 1024


class ConditionalStore(abc.ABC, Generic[_C, _V]):
    """The base of stores that keep one record per key in a database reached through a
    client library, and settle every race with the database's conditional writes.

    It implements the ``Store`` protocol. A subclass for one database supplies what is its
    own: the client (``_new_client``), what its SDK's exceptions mean (``_failure``), and
    the item layout and conditional writes (``_read``, ``_fields``, ``_insert``,
    ``_replace``, ``_complete``, ``_delete``), plus ``clear``. The base holds the rest:

    - the client, made by ``_new_client`` on first use unless one is given, so that
      constructing a store imports no SDK; ``client`` and ``close()``;
    - the checks: ``max_result_bytes`` between 1 and ``result_limit``, finite times
      (``ValueError``), and a result over ``result_limit`` refused before any request;
    - error translation: around every call to the client, an exception ``_failure``
      recognises becomes ``StoreUnavailableError`` or ``RecordTooLargeError``, and an
      ``ImportError`` becomes ``MissingDependencyError`` naming ``requires`` and ``extra``;
    - decoding: ``_fields`` reads the item's fields, and the base checks their types, so
      an item it cannot read, or one that holds another key, raises ``CorruptRecordError``;
    - ``acquire``, ``complete``, ``release`` and ``get``, as loops around the writes.

    ``acquire`` inserts an IN_PROGRESS record. When the key is taken it reads the record
    (or takes it from the insert's error, see ``_holder``) and returns it if it is live; a
    dead one is replaced on condition that it is unchanged since it was read. ``complete``
    and ``release`` write on condition of the version of a record the caller owns: the
    version ``acquire`` wrote, when the insert reported one, else one read just before. A
    write that loses a race looks again, up to 8 times; then the store raises
    ``StoreUnavailableError``.

    A *versioned* store (the default) conditions its writes on a version the database
    gives every write: an ETag, an update time. An *unversioned* store
    (``versioned = False``, version type ``None``) writes conditions that test the stored
    record itself, as DynamoDB's condition expressions can: its insert also takes over a
    dead record, and ``complete`` and ``release`` test the status and token on the server,
    so they never read first and a failed condition means the caller does not own the key.

    Type parameters: the client's type and the version's type.
    """

    backend: ClassVar[str]
    """The database's name in messages, such as ``"DynamoDB"``."""

    record_noun: ClassVar[str] = "record"
    """What the database calls one stored record (``"item"``, ``"document"``)."""

    result_limit: ClassVar[int]
    """The largest result one record can hold: the upper bound of ``max_result_bytes``."""

    requires: ClassVar[str]
    """The package the client needs, named by ``MissingDependencyError``."""

    extra: ClassVar[str | None] = None
    """The distribution extra that installs ``requires``, such as ``"polyserve-aws[dynamodb]"``."""

    versioned: ClassVar[bool] = True
    """Whether writes are conditioned on a version read before (see above)."""

    def __init__(self, name: str, *, client: _C | None = None, max_result_bytes: int) -> None:
        """``name`` is the table or collection, shown by ``repr``.

        ``client`` is used as is and never closed by the store; without one,
        ``_new_client`` makes one on first use.

        Raises:
            ConfigurationError: ``max_result_bytes`` is not between 1 and ``result_limit``.
        """
        if not 0 < max_result_bytes <= self.result_limit:
            raise ConfigurationError(
                f"max_result_bytes must be between 1 and {self.result_limit} "
                f"({self.backend}'s {self.record_noun} size limit), got {max_result_bytes}"
            )
        self.max_result_bytes = max_result_bytes
        self._name = name
        self._client: LazyClient[_C] = LazyClient(self._connect, client)
        # The versions acquire() wrote, by (key, token), so that complete() and release()
        # can write without reading first. Single dict operations are atomic, so threads
        # share it without a lock.
        self._versions: dict[tuple[str, str], _V] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r})"

    @property
    def client(self) -> _C:
        """The client, created on first use unless one was given."""
        return self._client.get()

    def close(self) -> None:
        """Close the connections of a client this store created (a given client stays open)."""
        self._client.close()

    # The Store protocol.

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

        One insert when the key is free; a hit costs the insert and a read (none when the
        insert's error carries the record); taking over a dead record costs one more,
        conditional, write. Raises ``ValueError`` for times that are not finite.
        """
        _check_finite(lock_expires_at, expires_at, now)
        record = Record(key, Status.IN_PROGRESS, token, fingerprint, lock_expires_at, expires_at)
        with self._errors():
            for _ in range(_ATTEMPTS):
                try:
                    version = self._insert(record, now)
                except Exception as exc:
                    if self._failure(exc) is not Failure.CONFLICT:
                        raise
                    holder = self._holder(exc)
                    held = self._lookup(key) if holder is None else self._checked(key, *holder)
                else:
                    self._remember(key, token, version)
                    return None
                if held is None:
                    continue  # released since the insert failed: insert again
                found, version = held
                if found.status is Status.IN_PROGRESS and found.token == token:
                    # The client retried an insert whose first attempt had landed.
                    self._remember(key, token, version)
                    return None
                if is_live(found, now):
                    return found
                if not self.versioned:
                    continue  # it died after the insert's condition judged it: insert again
                try:
                    version = self._replace(record, version, now)
                except Exception as exc:
                    # Replaced or deleted by someone else first: look again.
                    if self._failure(exc) not in (Failure.CONFLICT, Failure.NOT_FOUND):
                        raise
                else:
                    self._remember(key, token, version)
                    return None
        raise self._contended()

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Mark the record COMPLETED with ``result`` iff it is IN_PROGRESS with ``token``.

        Returns False when the record is gone or owned by another token. Raises
        ``RecordTooLargeError`` when the record would exceed the database's size limit, and
        ``ValueError`` when ``expires_at`` is not finite.
        """
        _check_finite(expires_at)
        if len(result) > self.result_limit:
            raise RecordTooLargeError(
                f"result of {len(result)} bytes exceeds {self.backend}'s "
                f"{self.record_noun} size limit"
            )

        def write(version: _V) -> bool:
            self._complete(key, token, version, result, expires_at)
            return True

        return self._owner_write(key, token, write)

    def release(self, key: str, *, token: str) -> bool:
        """Delete the record iff it is IN_PROGRESS with ``token``."""
        return self._owner_write(key, token, lambda version: self._delete(key, token, version))

    def get(self, key: str) -> Record | None:
        """The stored record, live or not, read consistently; None when there is none."""
        with self._errors():
            held = self._lookup(key)
        return None if held is None else held[0]

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every record of this store (for tests). Wrap the calls in ``_errors()``."""

    # What a subclass supplies. The base calls these inside ``_errors()``.

    @abc.abstractmethod
    def _new_client(self) -> _C:
        """A new client. Import the SDK here: an ``ImportError`` names ``requires``."""

    @abc.abstractmethod
    def _failure(self, exc: Exception) -> Failure | None:
        """What ``exc`` means, or None if it is not an error of the client or the service.

        Import the SDK's exception classes here, not at module level.
        """

    def _describe(self, exc: Exception) -> str:
        """The end of a ``StoreUnavailableError``'s detail, after "<backend> idempotency store".

        Clients see it (the error is a 503), so it names the kind of failure, never the
        server. By default ``"unavailable: <exception class>"``; a store may name the
        service's error code instead.
        """
        return f"unavailable: {type(exc).__name__}"

    @abc.abstractmethod
    def _fields(self, item: Any) -> Mapping[str, object]:
        """The fields of a stored item, named as ``Record``'s attributes.

        ``key``, ``status`` (the ``Status`` value), ``token``, ``fingerprint`` (may be
        missing or None), ``lock_expires_at``, ``expires_at`` and, for a COMPLETED record,
        ``result``. The base checks their types; this may also raise ``KeyError``,
        ``TypeError`` or ``ValueError`` for an item it cannot read, which the base reports
        as ``CorruptRecordError``.
        """

    @abc.abstractmethod
    def _read(self, key: str) -> tuple[Any, _V] | None:
        """The item stored for ``key`` and its version, read consistently; None if none."""

    @abc.abstractmethod
    def _insert(self, record: Record, now: float) -> _V | None:
        """Write ``record`` (IN_PROGRESS) iff no item exists for its key.

        An unversioned store also writes it over an item that is dead at ``now``. Raise the
        SDK's error (a CONFLICT) when the condition fails. Returns the version written, or
        None when the database does not report it.
        """

    def _holder(self, conflict: Exception) -> tuple[Any, _V] | None:
        """The item and version that made ``_insert`` fail, when the error carries them.

        By default None, and the base reads the item.
        """
        return None

    def _replace(self, record: Record, version: _V, now: float) -> _V | None:
        """Overwrite the item of ``record``'s key with ``record`` iff it is still at
        ``version``; returns the new version, or None when not reported. ``now`` is the
        caller's, as for ``_insert``.

        Versioned stores only: the base never calls it when ``versioned`` is False.
        """
        raise NotImplementedError(f"{type(self).__name__} is versioned but has no _replace")

    @abc.abstractmethod
    def _complete(
        self, key: str, token: str, version: _V, result: bytes, expires_at: float
    ) -> None:
        """Write status COMPLETED, ``result`` and ``expires_at`` into the item iff it is at
        ``version`` (unversioned: iff it is IN_PROGRESS with ``token``)."""

    @abc.abstractmethod
    def _delete(self, key: str, token: str, version: _V) -> bool:
        """Delete the item iff it is at ``version`` (unversioned: iff it is IN_PROGRESS with
        ``token``). Returns False when there was no item, for SDKs that report that by a
        status rather than an error."""

    # The machinery.

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate the client's exceptions into polyserve's."""
        try:
            yield
        except PolyserveError:
            raise
        except ImportError as exc:
            raise MissingDependencyError(
                self.requires, feature=type(self).__name__, extra=self.extra
            ) from exc
        except Exception as exc:
            failure = self._failure(exc)
            if failure is None:
                raise
            if failure is Failure.TOO_LARGE:
                raise RecordTooLargeError(
                    f"{self.backend} idempotency record exceeds the {self.record_noun} size limit"
                ) from exc
            # Any other answer (throttling, a missing table, refused credentials) fails the
            # invocation like an outage does: nothing was written, and the platform retries
            # or reports it.
            raise StoreUnavailableError(
                f"{self.backend} idempotency store {self._describe(exc)}"
            ) from exc

    def _connect(self) -> _C:
        with self._errors():
            return self._new_client()

    def _decode(self, item: Any) -> Record:
        """The record ``item`` holds; raises ``CorruptRecordError`` when it holds none."""
        try:
            return _record_from(self._fields(item))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecordError(
                f"{self.backend} idempotency record cannot be read: {type(exc).__name__}: {exc}"
            ) from exc

    def _checked(self, key: str, item: Any, version: _V) -> tuple[Record, _V]:
        record = self._decode(item)
        if record.key != key:
            raise CorruptRecordError(f"{self.backend} idempotency record holds another key")
        return record, version

    def _lookup(self, key: str) -> tuple[Record, _V] | None:
        found = self._read(key)
        return None if found is None else self._checked(key, *found)

    def _owner_write(self, key: str, token: str, write: Callable[[_V], bool]) -> bool:
        """Run ``write(version)`` iff the record is IN_PROGRESS with ``token``; else False."""
        version = self._versions.pop((key, token), None)
        with self._errors():
            for _ in range(_ATTEMPTS):
                if version is None and self.versioned:
                    held = self._lookup(key)
                    if held is None or not _owned(held[0], token):
                        return False
                    version = held[1]
                try:
                    # Unversioned, the version is None and the write tests the token itself.
                    return write(cast("_V", version))
                except Exception as exc:
                    failure = self._failure(exc)
                    if failure is Failure.NOT_FOUND or (
                        failure is Failure.CONFLICT and not self.versioned
                    ):
                        return False
                    if failure is not Failure.CONFLICT:
                        raise
                version = None  # changed since it was read: read it and check the token again
        raise self._contended()

    def _remember(self, key: str, token: str, version: _V | None) -> None:
        if version is None:
            return
        # complete() or release() normally takes the entry out again; the bound only
        # matters if callers stop calling them. A forgotten version costs one read.
        if len(self._versions) >= _VERSIONS_KEPT:
            self._versions.clear()
        self._versions[(key, token)] = version

    def _contended(self) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"{self.backend} idempotency store: key kept changing over {_ATTEMPTS} attempts"
        )


def _owned(record: Record, token: str) -> bool:
    return record.status is Status.IN_PROGRESS and record.token == token


def _check_finite(*times: float) -> None:
    for value in times:
        if not math.isfinite(value):
            raise ValueError(f"record times must be finite, got {value}")


_T = TypeVar("_T")


def _record_from(fields: Mapping[str, object]) -> Record:
    """The record ``fields`` hold; raises KeyError, TypeError or ValueError if none."""
    status = Status(_typed(fields, "status", str))
    fingerprint = fields.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise TypeError(f"field 'fingerprint' holds a {type(fingerprint).__name__}")
    return Record(
        key=_typed(fields, "key", str),
        status=status,
        token=_typed(fields, "token", str),
        fingerprint=fingerprint,
        lock_expires_at=_time(fields, "lock_expires_at"),
        expires_at=_time(fields, "expires_at"),
        result=_typed(fields, "result", bytes) if status is Status.COMPLETED else None,
    )


def _typed(fields: Mapping[str, object], name: str, kind: type[_T]) -> _T:
    value = fields[name]
    if not isinstance(value, kind):
        raise TypeError(f"field {name!r} holds a {type(value).__name__}")
    return value


def _time(fields: Mapping[str, object], name: str) -> float:
    value = fields[name]
    # bool is an int, but never a time.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"field {name!r} holds a {type(value).__name__}")
    return float(value)
