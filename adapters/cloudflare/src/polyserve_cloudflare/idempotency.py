"""An idempotency store in a D1 database, reached through the Worker's D1 binding.

D1 is SQLite, and each statement it runs is atomic, so every store operation is one
statement: ``acquire`` is an ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that
takes the key only when no live record holds it, and says whether it did with
``RETURNING``; ``complete`` and ``release`` are token-checked ``UPDATE`` and
``DELETE`` statements. D1 runs a database's statements one at a time in a single
location, so two isolates that race for one key see one winner, wherever they run.

The binding is asynchronous, so the store is used from ``async def`` handlers:
``@idempotent`` awaits its ``*_async`` methods (see ``polyserve.idempotency.store.
AsyncStore``); its blocking methods raise ``ConfigurationError``. Results are kept
base64-encoded (D1 hands BLOBs back as arrays of numbers), so a result of up to
1,000,000 bytes fits D1's 2,000,000-byte row limit.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from polyserve.errors import ConfigurationError, CorruptRecordError, StoreUnavailableError
from polyserve.idempotency.store import Record, Status, is_live
from polyserve_cloudflare._worker import worker_env

if TYPE_CHECKING:
    from polyserve_cloudflare.types import JsRuntime

__all__ = ["MAX_RESULT_BYTES", "D1Store"]

MAX_RESULT_BYTES = 1_000_000
"""The largest result kept: base64 makes it 4/3 as long, under D1's 2,000,000-byte rows."""

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COLUMNS = "status, token, fingerprint, lock_expires_at, expires_at, result"
# A race with a release or an expiry between acquire's two statements is retried.
_ATTEMPTS = 5


class D1Store:
    """Idempotency records in a D1 table (created on first use).

    Args:
        binding: the name of the D1 binding in the Worker's ``env``.
        table: the table name.
        env: the ``env`` to take the binding from; by default the current invocation's.
        max_result_bytes: the largest serialised result stored (at most 1,000,000).
        runtime: how JavaScript values are made (``FakeRuntime()`` under CPython).
    """

    def __init__(
        self,
        binding: str = "DB",
        *,
        table: str = "polyserve_idempotency",
        env: Any = None,
        max_result_bytes: int = MAX_RESULT_BYTES,
        runtime: JsRuntime | None = None,
    ) -> None:
        if not _TABLE_NAME.fullmatch(table):
            raise ConfigurationError(f"table must be a plain SQL identifier, got {table!r}")
        if not 0 < max_result_bytes <= MAX_RESULT_BYTES:
            raise ConfigurationError(
                f"max_result_bytes must be 1..{MAX_RESULT_BYTES}, got {max_result_bytes!r}"
            )
        self.binding = binding
        self.table = table
        self.env = env
        self.max_result_bytes = max_result_bytes
        self._runtime = runtime
        self._created = False

    def __repr__(self) -> str:
        return f"D1Store({self.binding!r}, table={self.table!r})"

    def _database(self) -> Any:
        env = worker_env(self.env)
        found = getattr(env, self.binding, None)
        if found is None or isinstance(found, str):
            raise ConfigurationError(
                f"no D1 binding {self.binding!r} in the Worker's env: add it under "
                "d1_databases in the Wrangler file"
            )
        if self._runtime is None:
            from polyserve_cloudflare._js import PyodideRuntime

            self._runtime = PyodideRuntime()
        return self._runtime.unwrap(found)

    async def _first(self, sql: str, *values: object) -> Any:
        """The first row ``sql`` gives (``None`` for none), creating the table first."""
        db = self._database()
        runtime = self._runtime
        assert runtime is not None  # set by _database
        try:
            if not self._created:
                await db.prepare(
                    f"CREATE TABLE IF NOT EXISTS {self.table} (key TEXT PRIMARY KEY, "
                    "status TEXT NOT NULL, token TEXT NOT NULL, fingerprint TEXT NOT NULL, "
                    "lock_expires_at REAL NOT NULL, expires_at REAL NOT NULL, "
                    "result TEXT NOT NULL)"
                ).run()
                self._created = True
            row = await db.prepare(sql).bind(*values).first()
        except Exception as exc:
            # D1 reports every failure (overloaded, a reset, a timeout) as an Error whose
            # message starts with D1_ERROR; none of them says the record is bad.
            text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailableError(
                f"the idempotency store (D1) is unavailable: {text}"
            ) from None
        return None if runtime.is_null(row) else row

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
        """Take ``key`` unless a live record holds it (see ``Store.acquire``)."""
        table = self.table
        for _ in range(_ATTEMPTS):
            taken = await self._first(
                f"INSERT INTO {table} (key, {_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, '') "
                "ON CONFLICT (key) DO UPDATE SET status = excluded.status, "
                "token = excluded.token, fingerprint = excluded.fingerprint, "
                "lock_expires_at = excluded.lock_expires_at, "
                "expires_at = excluded.expires_at, result = '' "
                f"WHERE ({table}.status = ?7 AND {table}.expires_at <= ?8) "
                f"OR ({table}.status = ?2 AND {table}.lock_expires_at <= ?8) "
                "RETURNING token",
                key,
                Status.IN_PROGRESS.value,
                token,
                fingerprint or "",
                lock_expires_at,
                expires_at,
                Status.COMPLETED.value,
                now,
            )
            if taken is not None:
                return None
            existing = await self.get_async(key)
            if existing is not None and is_live(existing, now):
                return existing
        raise StoreUnavailableError(
            "the idempotency store (D1) kept changing under this key; try again"
        )

    async def complete_async(
        self, key: str, *, token: str, result: bytes, expires_at: float
    ) -> bool:
        """Store ``result`` iff ``key`` is IN_PROGRESS with ``token`` (see ``Store.complete``)."""
        row = await self._first(
            f"UPDATE {self.table} SET status = ?1, result = ?2, expires_at = ?3 "
            "WHERE key = ?4 AND token = ?5 AND status = ?6 RETURNING key",
            Status.COMPLETED.value,
            base64.b64encode(result).decode(),
            expires_at,
            key,
            token,
            Status.IN_PROGRESS.value,
        )
        return row is not None

    async def release_async(self, key: str, *, token: str) -> bool:
        """Delete ``key`` iff it is IN_PROGRESS with ``token`` (see ``Store.release``)."""
        row = await self._first(
            f"DELETE FROM {self.table} WHERE key = ?1 AND token = ?2 AND status = ?3 RETURNING key",
            key,
            token,
            Status.IN_PROGRESS.value,
        )
        return row is not None

    async def get_async(self, key: str) -> Record | None:
        """The stored record, live or not, or ``None``."""
        row = await self._first(f"SELECT {_COLUMNS} FROM {self.table} WHERE key = ?1", key)
        return None if row is None else _record(key, row)

    async def clear_async(self) -> None:
        """Delete every record in the table."""
        await self._first(f"DELETE FROM {self.table}")

    # The blocking Store methods: a binding cannot be waited for without an event loop.

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
        raise _blocking()

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        raise _blocking()

    def release(self, key: str, *, token: str) -> bool:
        raise _blocking()

    def get(self, key: str) -> Record | None:
        raise _blocking()

    def clear(self) -> None:
        raise _blocking()


def _record(key: str, row: Any) -> Record:
    try:
        status = Status(row.status)
        result = None
        if status is Status.COMPLETED:
            result = base64.b64decode(_text(row.result), validate=True)
        return Record(
            key=key,
            status=status,
            token=_text(row.token),
            fingerprint=_text(row.fingerprint) or None,
            lock_expires_at=float(row.lock_expires_at),
            expires_at=float(row.expires_at),
            result=result,
        )
    except (AttributeError, ValueError, TypeError) as exc:
        raise CorruptRecordError(f"unreadable idempotency record for {key!r}: {exc}") from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _blocking() -> ConfigurationError:
    return ConfigurationError(
        "D1Store is asynchronous: use it with @idempotent on an async def handler"
    )
