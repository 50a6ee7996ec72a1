"""A Redis Stream consumer group feeding an app's ``@app.queue`` handlers.

Each stream entry becomes a ``Message`` for the ``Trigger.QUEUE`` registration named
after the stream (or ``name``): its ``body`` field is the body (bytes), the other fields
are ``attributes`` (decoded as UTF-8, undecodable bytes replaced), ``id`` is the entry
id, ``enqueued_at`` the time in that id, and ``attempt`` the group's delivery count.

The loop, until ``stop()``:

1. every ``claim_interval`` seconds, ``XAUTOCLAIM`` takes over entries another consumer
   (one that died, say) left pending for longer than ``min_idle`` seconds; their
   delivery count, read with ``XPENDING``, is their ``attempt``, so ``max_attempts``
   and ``on_poison`` apply. Entries deleted from the stream meanwhile are acknowledged.
2. ``XREADGROUP`` reads up to ``count`` new entries, blocking at most ``block`` seconds.
3. The batch runs through the app as ``polyserve.batch`` describes; succeeded and
   set-aside entries are acknowledged with ``XACK``, failed ones stay pending and are
   reclaimed once idle (a ``Retry`` delay is not honoured sooner than ``min_idle``).

Delivery is at least once: a consumer killed mid-batch acknowledged none of it, so
the whole batch, the entries it finished included, is reclaimed by another consumer on
a later attempt. Handlers with side effects should be idempotent (``@idempotent``).

``stop()`` (SIGTERM and SIGINT in the ``polyserve consume`` command) lets the batch in
hand finish and be acknowledged, then returns: nothing read is lost, because whatever
was not acknowledged stays pending in the group. A lost connection (a Redis restart)
is retried with exponential backoff up to ``max_backoff`` seconds; a group that
vanished with a Redis that kept no data is created again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyserve.context import Context
from polyserve.errors import ConfigurationError, MissingDependencyError
from polyserve.events import Message
from polyserve.routing import Trigger

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from polyserve.app import App
    from polyserve.batch import BatchResult

__all__ = ["RedisStreamConsumer", "StreamTarget", "message", "parse_url"]

_BODY = b"body"


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where to read: the server URL (``redis://HOST:PORT/DB``) and the stream key."""

    url: str
    stream: str


def parse_url(url: str) -> StreamTarget:
    """Split ``redis://HOST:PORT/STREAM`` or ``redis://HOST:PORT/DB/STREAM``.

    Raises:
        ConfigurationError: not a ``redis://`` or ``rediss://`` URL naming a stream.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss"):
        raise ConfigurationError(f"expected redis://HOST:PORT/STREAM, got {url!r}")
    netloc, slash, path = rest.partition("/")
    parts = [p for p in path.split("/") if p] if slash else []
    if not netloc or not parts or len(parts) > 2:
        raise ConfigurationError(f"expected redis://HOST:PORT/STREAM, got {url!r}")
    db = parts[0] if len(parts) == 2 else "0"
    if not db.isdigit():
        raise ConfigurationError(f"the database in {url!r} must be a number, got {db!r}")
    return StreamTarget(f"{scheme}://{netloc}/{db}", parts[-1])


def _id_time(entry_id: str) -> dt.datetime | None:
    millis, _, _ = entry_id.partition("-")
    if not millis.isdigit():
        return None
    return dt.datetime.fromtimestamp(int(millis) / 1000, dt.timezone.utc)


def message(entry_id: str, fields: Mapping[bytes, bytes], source: str, attempt: int = 1) -> Message:
    """The ``Message`` for one stream entry (see the module docstring)."""
    attributes = {
        key.decode("utf-8", "replace"): value.decode("utf-8", "replace")
        for key, value in fields.items()
        if key != _BODY
    }
    return Message(
        id=entry_id,
        body=fields.get(_BODY, b""),
        attributes=attributes,
        attempt=attempt,
        enqueued_at=_id_time(entry_id),
        source=source,
        raw={"id": entry_id, "fields": dict(fields)},
    )


class RedisStreamConsumer:
    """One consumer of a group, running ``app``'s queue handlers (see the module docstring)."""

    def __init__(
        self,
        app: App,
        url: str,
        stream: str,
        group: str,
        *,
        consumer: str | None = None,
        name: str | None = None,
        count: int = 10,
        block: float = 1.0,
        min_idle: float = 60.0,
        claim_interval: float | None = None,
        start: str = "0",
        max_backoff: float = 5.0,
    ) -> None:
        self.app = app
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"polyserve-{uuid.uuid4().hex[:12]}"
        self.name = name or stream
        self.count = count
        self.block = block
        self.min_idle = min_idle
        self.claim_interval = min_idle / 2 if claim_interval is None else claim_interval
        self.start = start
        self.max_backoff = max_backoff
        self.handled = 0
        self._stopping = False
        # Handled, but not yet acknowledged to Redis: the connection dropped first.
        self._unacked: list[str] = []
        self._client: Any = None

    def stop(self) -> None:
        """Finish the batch in hand, acknowledge it, and return from ``run``."""
        self._stopping = True

    async def run(self) -> None:
        """Consume until ``stop()``; reconnects after connection errors."""
        try:
            import redis.asyncio as aioredis
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError
        except ImportError:
            raise MissingDependencyError(
                "redis", feature="polyserve consume", extra="polyserve-core[redis]"
            ) from None
        transient = (RedisConnectionError, RedisTimeoutError, OSError)
        backoff = 0.0
        self._client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2.0)
        logger = Context("local", function_name=self.app.name).logger
        try:
            await self._ensure_group()
            next_claim = 0.0
            loop = asyncio.get_running_loop()
            while not self._stopping:
                try:
                    await self._flush_acks()
                    if loop.time() >= next_claim:
                        next_claim = loop.time() + self.claim_interval
                        await self._claim()
                    if not self._stopping:
                        await self._read()
                    backoff = 0.0
                except transient as exc:
                    backoff = min(self.max_backoff, max(0.05, backoff * 2))
                    logger.warning(
                        "redis unreachable; retrying", error=type(exc).__name__, delay=backoff
                    )
                    await self._sleep(backoff * (0.5 + random.random() / 2))
                    with contextlib.suppress(*transient):
                        await self._ensure_group()
        finally:
            await self._client.aclose()

    async def _sleep(self, seconds: float) -> None:
        # Wakes early on stop(), so a stopping consumer is not held by its backoff.
        end = asyncio.get_running_loop().time() + seconds
        while not self._stopping and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(min(0.05, seconds))

    async def _ensure_group(self) -> None:
        from redis.exceptions import ResponseError

        try:
            await self._client.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise ConfigurationError(f"cannot create group {self.group!r}: {exc}") from None

    async def _read(self) -> None:
        from redis.exceptions import ResponseError

        try:
            reply = await self._client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=self.count,
                block=max(1, int(self.block * 1000)),
            )  # fmt: skip
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._ensure_group()
            return
        entries = [(_text(i), f) for _, batch in reply or () for i, f in batch if f is not None]
        if entries:
            await self._handle(entries, dict.fromkeys((i for i, _ in entries), 1))

    async def _claim(self) -> None:
        from redis.exceptions import ResponseError

        cursor = "0-0"
        while not self._stopping:
            try:
                reply = await self._client.xautoclaim(
                    self.stream, self.group, self.consumer, int(self.min_idle * 1000),
                    start_id=cursor, count=self.count,
                )  # fmt: skip
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_group()
                return
            cursor = _text(reply[0])
            claimed = [(_text(i), f) for i, f in reply[1] if f is not None]
            deleted = [_text(i) for i in reply[2]] if len(reply) > 2 else []
            if deleted:
                await self._client.xack(self.stream, self.group, *deleted)
            if claimed:
                await self._handle(claimed, await self._attempts([i for i, _ in claimed]))
            if cursor == "0-0":
                return

    async def _attempts(self, ids: Sequence[str]) -> dict[str, int]:
        # XAUTOCLAIM counted this delivery already: times_delivered is the attempt.
        rows = await self._client.xpending_range(
            self.stream, self.group, min=ids[0], max=ids[-1], count=len(ids) * 2 + 10,
            consumername=self.consumer,
        )  # fmt: skip
        counts = {_text(r["message_id"]): int(r["times_delivered"]) for r in rows}
        return {i: counts.get(i, 1) for i in ids}

    async def _handle(self, entries: list[tuple[str, Any]], attempts: dict[str, int]) -> None:
        context = Context("local", invocation_id=uuid.uuid4().hex, function_name=self.app.name)

        def decode(entry: tuple[str, Any]) -> tuple[str, object]:
            entry_id, fields = entry
            return self.name, message(entry_id, fields, self.name, attempts[entry_id])

        result: BatchResult = await self.app.handle_batch_async(
            Trigger.QUEUE, entries, context, decode=decode, item_id=lambda e: e[0]
        )
        done = result.acknowledged
        self.handled += len(done)
        self._unacked.extend(done)
        await self._flush_acks()

    async def _flush_acks(self) -> None:
        # A message handled while Redis went away is acknowledged once it is back, before
        # anything else, rather than delivered again when its idle time has passed.
        if self._unacked:
            await self._client.xack(self.stream, self.group, *self._unacked)
            self._unacked.clear()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
