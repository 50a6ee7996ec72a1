"""A store in a SQLite file: durable, and safe for many processes on one host."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from polyserve.idempotency.errors import CorruptRecordError, StoreUnavailableError
from polyserve.idempotency.store import Record, Status, is_live

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SQLiteStore"]

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SWEEP_EVERY = 1024


class SQLiteStore:
    """Records in a SQLite database file, shared by every process on the host that opens it.

    ``acquire`` is one ``BEGIN IMMEDIATE`` transaction, which holds the database's write
    lock while it reads the record and, if the key is free, writes it; ``complete`` and
    ``release`` are single token-checked statements. The database runs in WAL mode, so
    readers never block the writer, and waits up to ``busy_timeout`` seconds for the lock
    before giving up with ``StoreUnavailableError``. Commits are synced to disk
    (``synchronous=FULL``), so a record survives a crash of the process or the machine.

    Each thread of each process opens its own connection on first use. Dead records are
    replaced by the next ``acquire`` of their key; ``purge`` deletes them all, and an
    ``acquire`` runs it every 1024 calls.

    Args:
        path: the database file (created if missing). Use a local disk: SQLite's locking
            is not reliable on network file systems.
        table: the table name.
        busy_timeout: seconds to wait for another process's write lock.
        max_result_bytes: the largest serialised result stored.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "polyserve_idempotency",
        busy_timeout: float = 10.0,
        max_result_bytes: int = 1024 * 1024,
    ) -> None:
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"table must be a plain SQL identifier, got {table!r}")
        self.path = os.fspath(path)
        self.table = table
        self.busy_timeout = busy_timeout
        self.max_result_bytes = max_result_bytes
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._acquires = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, table={self.table!r})"

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
        """Take ``key`` unless a live record holds it (see ``Store.acquire``)."""
        self._acquires += 1
        sweep = self._acquires % _SWEEP_EVERY == 0
        with self._errors(), self._transaction() as db:
            if sweep:
                self._delete_dead(db, now)
            row = db.execute(
                f"SELECT status, token, fingerprint, lock_expires_at, expires_at, result "
                f"FROM {self.table} WHERE key = ?",
                (key,),
            ).fetchone()
            if row is not None:
                existing = _record(key, row)
                if is_live(existing, now):
                    return existing
            db.execute(
                f"INSERT OR REPLACE INTO {self.table} "
                f"(key, status, token, fingerprint, lock_expires_at, expires_at, result) "
                f"VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key, Status.IN_PROGRESS.value, token, fingerprint, lock_expires_at, expires_at),
            )
            return None

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Store ``result`` iff ``key`` is IN_PROGRESS with ``token`` (see ``Store.complete``)."""
        with self._errors():
            cursor = self._connection().execute(
                f"UPDATE {self.table} SET status = ?, result = ?, expires_at = ? "
                f"WHERE key = ? AND token = ? AND status = ?",
                (Status.COMPLETED.value, bytes(result), expires_at, key, token,
                 Status.IN_PROGRESS.value),
            )  # fmt: skip
            return cursor.rowcount == 1

    def release(self, key: str, *, token: str) -> bool:
        """Delete ``key`` iff it is IN_PROGRESS with ``token`` (see ``Store.release``)."""
        with self._errors():
            cursor = self._connection().execute(
                f"DELETE FROM {self.table} WHERE key = ? AND token = ? AND status = ?",
                (key, token, Status.IN_PROGRESS.value),
            )
            return cursor.rowcount == 1

    def get(self, key: str) -> Record | None:
        """The stored record, live or not, or ``None``."""
        with self._errors():
            row = (
                self._connection()
                .execute(
                    f"SELECT status, token, fingerprint, lock_expires_at, expires_at, result "
                    f"FROM {self.table} WHERE key = ?",
                    (key,),
                )
                .fetchone()
            )
        return None if row is None else _record(key, row)

    def clear(self) -> None:
        """Delete every record in the table."""
        with self._errors():
            self._connection().execute(f"DELETE FROM {self.table}")

    def purge(self, now: float) -> int:
        """Delete every record that is no longer live at ``now``; returns how many."""
        with self._errors(), self._transaction() as db:
            return self._delete_dead(db, now)

    def close(self) -> None:
        """Close every connection this store opened. It reopens them if used again."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def _delete_dead(self, db: sqlite3.Connection, now: float) -> int:
        cursor = db.execute(
            f"DELETE FROM {self.table} WHERE (status = ? AND expires_at <= ?) "
            f"OR (status = ? AND lock_expires_at <= ?)",
            (Status.COMPLETED.value, now, Status.IN_PROGRESS.value, now),
        )
        return cursor.rowcount

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == pid:
            return held[1]
        # A connection inherited through fork() must not be used by the child, so each
        # process (and each thread) opens its own.
        connection = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,  # autocommit; acquire() opens its own transaction
            check_same_thread=False,  # used by one thread only, but close() may run anywhere
        )
        try:
            self._set_up(connection)
        except BaseException:
            connection.close()
            raise
        self._local.held = (pid, connection)
        with self._connections_lock:
            self._connections.append(connection)
        return connection

    def _set_up(self, connection: sqlite3.Connection) -> None:
        # Switching to WAL (and creating the table) while other connections do the same
        # can fail with "database is locked" at once: SQLite does not always call the busy
        # handler there. So the set-up retries, within the same busy timeout.
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
                connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.table} ("
                    "key TEXT PRIMARY KEY, status TEXT NOT NULL, token TEXT NOT NULL, "
                    "fingerprint TEXT, lock_expires_at REAL NOT NULL, expires_at REAL NOT NULL, "
                    "result BLOB)"
                )
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the block raises."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        # OperationalError covers "database is locked" after the busy timeout, a file that
        # cannot be opened and I/O errors: the store is unavailable, so the invocation fails
        # and is retried. Any other DatabaseError ("file is not a database", "malformed")
        # means that what is stored cannot be read.
        try:
            yield
        except sqlite3.OperationalError as exc:
            # Clients see this detail (503): SQLite's message ("database is locked"), never
            # the file's path.
            raise StoreUnavailableError(
                f"the idempotency store (SQLite) is unavailable: {exc}"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise CorruptRecordError(f"SQLite store {self.path!r}: {exc}") from exc


def _record(key: str, row: Any) -> Record:
    status, token, fingerprint, lock_expires_at, expires_at, result = row
    try:
        return Record(
            key=key,
            status=Status(status),
            token=_text(token),
            fingerprint=None if fingerprint is None else _text(fingerprint),
            lock_expires_at=float(lock_expires_at),
            expires_at=float(expires_at),
            result=None if result is None else bytes(result),
        )
    except (ValueError, TypeError) as exc:
        raise CorruptRecordError(f"unreadable idempotency record for {key!r}: {exc}") from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value
