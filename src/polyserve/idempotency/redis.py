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


# Each script is one atomic step on the server. Liveness is decided by comparing the
# record's times with the caller's ``now``; PEXPIRE only lets Redis drop records that can
# no longer matter, and is set relative to ``now`` so that a caller whose clock differs
# from the server's can never make a live record vanish early.
#
# ARGV: now, token, fingerprint ('' for none), lock_expires_at, expires_at, cleanup_ms.
# Returns nil when the caller now owns the key, else the live record's HGETALL.
_ACQUIRE = _Script("""
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 then
  local status, lock_expires_at, expires_at
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == 'status' then status = fields[i + 1]
    elseif name == 'lock_expires_at' then lock_expires_at = tonumber(fields[i + 1])
    elseif name == 'expires_at' then expires_at = tonumber(fields[i + 1])
    end
  end
  local now = tonumber(ARGV[1])
  local live
  if status == 'completed' then
    live = expires_at == nil or expires_at > now
  elseif status == 'in_progress' then
    live = lock_expires_at == nil or lock_expires_at > now
  else
    live = true
  end
  -- A record this script cannot judge is returned, never overwritten: the client
  -- reports it as corrupt instead of running the handler again.
  if live then return fields end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'status', 'in_progress', 'token', ARGV[2], 'fingerprint', ARGV[3],
  'lock_expires_at', ARGV[4], 'expires_at', ARGV[5], 'acquired_at', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return false
""")

# ARGV: token, result, expires_at. Returns 1 if stored, 0 if the token no longer owns the key.
# The cleanup time counts from the acquire's ``now``, so it is never earlier than expires_at.
_COMPLETE = _Script("""
local current = redis.call('HMGET', KEYS[1], 'status', 'token', 'acquired_at')
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'completed', 'result', ARGV[2], 'expires_at', ARGV[3])
local acquired_at = tonumber(current[3])
if acquired_at then
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((tonumber(ARGV[3]) - acquired_at) * 1000)))
else
  redis.call('PERSIST', KEYS[1])
end
return 1
""")

# ARGV: token. Returns 1 if deleted, 0 if the token no longer owns the key.
_RELEASE = _Script("""
local current = redis.call('HMGET', KEYS[1], 'status', 'token')
if current[1] ~= 'in_progress' or current[2] ~= ARGV[1] then return 0 end
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
        client = self._connect()
        try:
            found = client.hgetall(self.prefix + key)
        except self._exceptions.RedisError as exc:
            raise self._translate(key, exc) from exc
        if not found:
            return None
        return _record(key, [item for pair in found.items() for item in pair])

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
        client = self._connect()
        name = self.prefix + key
        errors = self._exceptions
        try:
            try:
                return client.evalsha(script.sha, 1, name, *args)
            except errors.NoScriptError:
                # EVAL runs the script and caches it, so later calls are EVALSHA hits again.
                return client.eval(script.source, 1, name, *args)
        except errors.RedisError as exc:
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


def _record(key: str, flat: Sequence[Any]) -> Record:
    try:
        fields = {bytes(flat[i]).decode(): flat[i + 1] for i in range(0, len(flat), 2)}
        fingerprint = _text(fields.get("fingerprint", b""))
        result = fields.get("result")
        return Record(
            key=key,
            status=Status(_text(fields["status"])),
            token=_text(fields["token"]),
            fingerprint=fingerprint or None,
            lock_expires_at=float(_text(fields["lock_expires_at"])),
            expires_at=float(_text(fields["expires_at"])),
            result=None if result is None else bytes(result),
        )
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"unreadable idempotency record for {key!r}: {exc!r}") from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return bytes(value).decode()


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
