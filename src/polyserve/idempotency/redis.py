"""A store in Redis: one round trip per call, shared by every host that reaches the server.

``redis`` (redis-py) is imported when the store first talks to the server, never at import.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
from typing import TYPE_CHECKING, Any

from polyserve.errors import MissingDependencyError
from polyserve.idempotency.errors import CorruptRecordError, StoreUnavailableError
from polyserve.idempotency.store import Record, Status, is_live

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

# The same two steps when this client still knows the exact in-progress record it wrote
# (the token in it is unique, so an unchanged record means an unchanged owner): no parsing.
# ARGV: the in-progress record, the completed record, cleanup_ms.
_COMPLETE_WRITTEN = _Script("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
""")

# ARGV: the in-progress record.
_RELEASE_WRITTEN = _Script("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
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


_WRITTEN_LIMIT = 4096


class RedisStore:
    """Records as Redis string values under ``prefix``, shared by every process and host.

    ``acquire`` costs one round trip for a free key and for a hit: an atomic
    ``SET ... NX GET`` either writes IN_PROGRESS or returns the record found. A record
    that is no longer live is replaced by a Lua script that applies the liveness rules
    with the caller's ``now``. ``complete`` and ``release`` are token-checked Lua
    scripts. Scripts run with EVALSHA and fall back to EVAL when the server has not
    cached them (after a restart or failover).

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
        self._set_get = True  # SET NX GET works (Redis 7.0 and later) until a server says no
        # token -> (key, the in-progress record this client wrote, its now), kept from a
        # successful acquire until complete or release. Single dict operations are atomic,
        # so threads share it without a lock.
        self._written: dict[str, tuple[str, bytes, float]] = {}
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
        """Take ``key`` unless a live record holds it (see ``Store.acquire``).

        One round trip: ``SET key <in-progress record> NX PX <lock> GET`` writes the record
        if the key is free and otherwise returns what is there, atomically. Only when that
        is a record that is no longer live (an expired result, or the lock of a caller
        that died) does a second round trip run the acquire script, which replaces it
        under the same rules. Servers before Redis 7.0, which cannot combine NX with GET,
        get the script every time.
        """
        if "\n" in token or (fingerprint and "\n" in fingerprint):
            raise ValueError("tokens and fingerprints must not contain newlines")
        cleanup_ms = max(1, int((lock_expires_at - now) * 1000) + 1)
        now_text, lock_text, fingerprint_text = repr(now), repr(lock_expires_at), fingerprint or ""
        # Exactly what the acquire script writes, too.
        value = (
            f"in_progress\n{lock_text}\n{expires_at!r}\n{now_text}\n{token}\n{fingerprint_text}\n"
        ).encode()
        found: Any = None
        if self._set_get:
            client = self._client or self._connect()
            try:
                found = client.set(self.prefix + key, value, nx=True, px=cleanup_ms, get=True)
            except self._exceptions.ResponseError as exc:
                if "syntax error" not in str(exc).lower():
                    raise self._translate(key, exc) from exc
                self._set_get = False
            except self._exceptions.RedisError as exc:
                raise self._translate(key, exc) from exc
            else:
                if found is not None:
                    record = _record(key, found)
                    if is_live(record, now):
                        return record
        if found is not None or not self._set_get:
            args = (now_text, token, fingerprint_text, lock_text, repr(expires_at), cleanup_ms)
            found = self._run(_ACQUIRE, key, args)
            if found is not None:
                return _record(key, found)
        written = self._written
        if len(written) >= _WRITTEN_LIMIT:
            # Callers that never complete nor release (only direct store users) must not
            # grow this without bound; their keys fall back to the token scripts.
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del written[next(iter(written))]
        written[token] = (key, value, now)
        return None

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        """Store ``result`` iff ``key`` is IN_PROGRESS with ``token`` (see ``Store.complete``)."""
        written = self._written.pop(token, None)
        if written is not None and written[0] == key:
            value, acquired_at = written[1], written[2]
            _, lock, _, tail = value.split(b"\n", 3)
            completed = b"completed\n%s\n%r\n%s=%s" % (lock, expires_at, tail, result)
            cleanup_ms = max(1, math.ceil((expires_at - acquired_at) * 1000))
            return bool(self._run(_COMPLETE_WRITTEN, key, (value, completed, cleanup_ms)) == 1)
        return bool(self._run(_COMPLETE, key, (token, bytes(result), repr(expires_at))) == 1)

    def release(self, key: str, *, token: str) -> bool:
        """Delete ``key`` iff it is IN_PROGRESS with ``token`` (see ``Store.release``)."""
        written = self._written.pop(token, None)
        if written is not None and written[0] == key:
            return bool(self._run(_RELEASE_WRITTEN, key, (written[1],)) == 1)
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
                    "redis", feature="RedisStore", extra="polyserve-core[redis]"
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
        # Clients see this detail (503), so it names the kind of failure, never the server;
        # the redis-py exception stays chained for the logs.
        return StoreUnavailableError(
            f"the idempotency store (Redis) is unavailable: {type(exc).__name__}"
        )


_STATUS = {b"in_progress": Status.IN_PROGRESS, b"completed": Status.COMPLETED}


def _parse(key: str, value: bytes) -> Record:
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


# A completed record comes back byte for byte the same on every hit, and a Record is
# immutable, so recent small ones are parsed once.
_parse_recent = functools.lru_cache(maxsize=256)(_parse)
_MEMO_BYTES = 8 * 1024


def _record(key: str, value: bytes) -> Record:
    if len(value) <= _MEMO_BYTES:
        return _parse_recent(key, value)
    return _parse(key, value)


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
