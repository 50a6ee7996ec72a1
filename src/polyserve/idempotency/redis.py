"""A store in Redis: one round trip per hit, shared by every host that reaches the server.

``redis`` (redis-py) is imported when the store first talks to the server, never at import.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from polyserve.errors import CorruptRecordError, MissingDependencyError, StoreUnavailableError
from polyserve.idempotency.store import Record, Status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis import Redis

__all__ = ["RedisStore"]


class _Script:
    """A Lua script run with EVALSHA, falling back to EVAL when the server lacks it."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


# A record is one string value, so that every write is a single SET with its cleanup
# expiry (PX) and every read is one bulk reply, which redis-py parses far faster than an
# array of hash fields:
#
#     status \n lock_expires_at \n expires_at \n acquired_at \n token \n fingerprint \n
#     then "=" and the result, for a COMPLETED record
#
# Each script is one atomic step on the server. Liveness is decided by comparing the
# record's times with the caller's ``now``. The expiry only lets Redis drop records that
# can no longer matter; it is relative to the acquire's ``now`` (kept as acquired_at), so
# a caller whose clock differs from the server's can never make a live record vanish.
_FIELDS = "^([%a_]+)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n"
_HEAD = "^([%a_]+)\\n([^\\n]*)\\n([^\\n]*)\\n"  # status, lock_expires_at, expires_at

# ARGV: now, token, fingerprint ('' for none), lock_expires_at, expires_at, cleanup_ms.
# Returns nil when the caller now owns the key, else the live record.
_ACQUIRE = _Script(f"""
local record = redis.call('GET', KEYS[1])
if record then
  local status, lock_expires_at, expires_at = string.match(record, '{_HEAD}')
  local now = tonumber(ARGV[1])
  local live = true
  if status == 'completed' then
    expires_at = tonumber(expires_at)
    live = expires_at == nil or expires_at > now
  elseif status == 'in_progress' then
    lock_expires_at = tonumber(lock_expires_at)
    live = lock_expires_at == nil or lock_expires_at > now
  end
  -- A record this script cannot judge is returned, never overwritten: the client
  -- reports it as corrupt instead of running the handler again.
  if live then return record end
end
redis.call('SET', KEYS[1], 'in_progress\\n' .. ARGV[4] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[1] ..
  '\\n' .. ARGV[2] .. '\\n' .. ARGV[3] .. '\\n', 'PX', ARGV[6])
return false
""")

# ARGV: token, result, expires_at. Returns 1 if stored, 0 if the token no longer owns the key.
_COMPLETE = _Script(f"""
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local status, lock_expires_at, _, acquired_at, token, fingerprint =
  string.match(record, '{_FIELDS}')
if status ~= 'in_progress' or token ~= ARGV[1] then return 0 end
local value = 'completed\\n' .. lock_expires_at .. '\\n' .. ARGV[3] .. '\\n' .. acquired_at ..
  '\\n' .. token .. '\\n' .. fingerprint .. '\\n=' .. ARGV[2]
local since = tonumber(acquired_at)
if since then
  redis.call('SET', KEYS[1], value, 'PX', math.max(1, math.ceil((tonumber(ARGV[3]) - since) * 1000)))
else
  redis.call('SET', KEYS[1], value)
end
return 1
""")

# ARGV: token. Returns 1 if deleted, 0 if the token no longer owns the key.
_RELEASE = _Script(f"""
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local status, _, _, _, token = string.match(record, '{_FIELDS}')
if status ~= 'in_progress' or token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
""")


class RedisStore:
    """Records as Redis hashes under ``prefix``, shared by every process and host.

    A hit costs one round trip: ``acquire`` is one Lua script that reads the record,
    applies the liveness rules and either writes IN_PROGRESS or returns what it found.
    ``complete`` and ``release`` are token-checked scripts. Scripts run with EVALSHA and
    fall back to EVAL when the server has not cached them (after a restart or failover).

    Durability is the server's: with persistence off, a restarted server forgets every
    record. Records get a Redis expiry as cleanup only.

    Args:
        url: a ``redis://`` or ``rediss://`` URL; the client is created on first use.
        client: an existing ``redis.Redis`` client (bytes responses) instead of ``url``.
        prefix: prepended to every key, so several stores can share a database.
        max_result_bytes: the largest serialised result stored.
        socket_timeout: seconds to wait for the server (for a client made from ``url``).

    Raises:
        MissingDependencyError: on first use, if the ``redis`` package is not installed.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis[bytes] | None = None,
        prefix: str = "polyserve:idempotency:",
        max_result_bytes: int = 1024 * 1024,
        socket_timeout: float = 5.0,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("RedisStore needs exactly one of url= or client=")
        self.url = url
        self.prefix = prefix
        self.max_result_bytes = max_result_bytes
        self.socket_timeout = socket_timeout
        given: Any = client
        if given is not None and given.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisStore needs a client with decode_responses=False")
        self._client: Any = given
        self._exceptions: Any = None
        if given is not None:
            from redis import exceptions  # already loaded: the caller made a client

            self._exceptions = exceptions

    def __repr__(self) -> str:
        where = self.url if self.url is not None else "client"
        return f"RedisStore({where!r}, prefix={self.prefix!r})"

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
        """Take ``key`` unless a live record holds it (see ``Store.acquire``). One round trip."""
        if "\n" in token or (fingerprint and "\n" in fingerprint):
            raise ValueError("tokens and fingerprints must not contain newlines")
        cleanup_ms = max(1, int((lock_expires_at - now) * 1000) + 1)
        args = (repr(now), token, fingerprint or "", repr(lock_expires_at), repr(expires_at),
                cleanup_ms)  # fmt: skip
        found = self._run(_ACQUIRE, key, args)
        return None if found is None else _record(key, found)

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Store ``result`` iff ``key`` is IN_PROGRESS with ``token`` (see ``Store.complete``)."""
        return bool(self._run(_COMPLETE, key, (token, bytes(result), repr(expires_at))) == 1)

    def release(self, key: str, *, token: str) -> bool:
        """Delete ``key`` iff it is IN_PROGRESS with ``token`` (see ``Store.release``)."""
        return bool(self._run(_RELEASE, key, (token,)) == 1)

    def get(self, key: str) -> Record | None:
        """The stored record, live or not, or ``None`` (Redis may have cleaned it up)."""
        client = self._client or self._connect()
        try:
            found = client.get(self.prefix + key)
        except self._exceptions.RedisError as exc:
            raise self._translate(key, exc) from exc
        return None if found is None else _record(key, found)

    def clear(self) -> None:
        """Delete every key under this store's prefix."""
        client = self._connect()
        pattern = _escape_glob(self.prefix) + "*"
        try:
            batch: list[bytes] = []
            for name in client.scan_iter(match=pattern, count=500):
                batch.append(name)
                if len(batch) >= 500:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)
        except self._exceptions.RedisError as exc:
            raise self._translate("*", exc) from exc

    def close(self) -> None:
        """Close the connections of a client this store created (a given client stays open)."""
        if self.url is not None and self._client is not None:
            self._client.close()
            self._client = None

    def _run(self, script: _Script, key: str, args: Sequence[object]) -> Any:
        client = self._client or self._connect()
        name = self.prefix + key
        try:
            try:
                return client.evalsha(script.sha, 1, name, *args)
            except self._exceptions.NoScriptError:
                # EVAL runs the script and caches it, so later calls are EVALSHA hits again.
                return client.eval(script.source, 1, name, *args)
        except self._exceptions.RedisError as exc:
            raise self._translate(key, exc) from exc

    def _connect(self) -> Any:
        if self._exceptions is None:
            try:
                from redis import exceptions
            except ImportError:
                raise MissingDependencyError(
                    "redis", feature="RedisStore", extra="polyserve[redis]"
                ) from None
            self._exceptions = exceptions
        if self._client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # One immediate retry covers a pooled connection the server has since closed;
            # anything longer belongs to the platform's own retry of the invocation.
            self._client = redis.Redis.from_url(
                self.url or "",
                socket_timeout=self.socket_timeout,
                socket_connect_timeout=self.socket_timeout,
                retry=Retry(NoBackoff(), 1),
            )
        return self._client

    def _translate(self, key: str, exc: BaseException) -> Exception:
        if isinstance(exc, self._exceptions.ResponseError) and str(exc).startswith("WRONGTYPE"):
            return CorruptRecordError(f"Redis key {self.prefix}{key} is not an idempotency record")
        return StoreUnavailableError(f"Redis store unavailable: {exc}")


_STATUS = {b"in_progress": Status.IN_PROGRESS, b"completed": Status.COMPLETED}


def _record(key: str, value: bytes) -> Record:
    try:
        status, lock_expires_at, expires_at, _, token, fingerprint, result = value.split(b"\n", 6)
        if not token or status not in _STATUS:
            raise ValueError("no token or an unknown status")
        return Record(
            key,
            _STATUS[status],
            token.decode(),
            fingerprint.decode() or None,
            float(lock_expires_at),
            float(expires_at),
            result[1:] if result[:1] == b"=" else None,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"unreadable idempotency record for {key!r}: {exc!r}") from None


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
