"""Messages waiting for delivery and set aside, in SQLite (``:memory:`` by default)."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

__all__ = ["Pending", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    due REAL NOT NULL,
    enqueued REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True)
class Pending:
    """One stored message: ``payload`` is what the endpoint received, decoded from JSON."""

    id: str
    trigger: str
    name: str
    payload: Any
    attempt: int
    due: float
    enqueued: float
    state: str
    reason: str

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trigger": self.trigger,
            "name": self.name,
            "attempt": self.attempt,
            "state": self.state,
            "reason": self.reason,
            "due": self.due,
        }


class Store:
    """The local message store; ``path`` is a SQLite file, or ``:memory:``."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A store dropped without close() (a server that never ran its lifespan) still
        # closes its database.
        self._closer = weakref.finalize(self, self._db.close)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(_SCHEMA)

    def add(
        self, trigger: str, name: str, payload: Any, now: float, due: float | None = None
    ) -> str:
        message_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, 1, ?, ?, 'pending', '')",
                (message_id, trigger, name, json.dumps(payload), now if due is None else due, now),
            )
        return message_id

    def due(self, now: float) -> list[Pending]:
        return self._select("WHERE state = 'pending' AND due <= ? ORDER BY due", (now,))

    def next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(due) FROM messages WHERE state = 'pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def listing(self) -> list[Pending]:
        return self._select("WHERE state != 'done' ORDER BY enqueued", ())

    def get(self, message_id: str) -> Pending | None:
        found = self._select("WHERE id = ?", (message_id,))
        return found[0] if found else None

    def done(self, message_id: str) -> None:
        self._update("state = 'done'", (), message_id)

    def set_aside(self, message_id: str, reason: str) -> None:
        self._update("state = 'set_aside', reason = ?", (reason,), message_id)

    def retry(self, message_id: str, due: float, reason: str) -> None:
        self._update("attempt = attempt + 1, due = ?, reason = ?", (due, reason), message_id)

    def close(self) -> None:
        with self._lock:
            self._closer()

    def _update(self, assignments: str, values: tuple[Any, ...], message_id: str) -> None:
        with self._lock:
            self._db.execute(
                f"UPDATE messages SET {assignments} WHERE id = ?",  # fixed SQL from this module
                (*values, message_id),
            )

    def _select(self, where: str, values: tuple[Any, ...]) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, trigger, name, payload, attempt, due, enqueued, state, reason "
                f"FROM messages {where}",  # fixed SQL from this module
                values,
            ).fetchall()
        return [Pending(r[0], r[1], r[2], json.loads(r[3]), *r[4:]) for r in rows]
