"""The Redis Stream consumer (``polyserve consume``) against a real redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

from polyserve import App, SetAside
from polyserve.consumers.redis_streams import RedisStreamConsumer, message, parse_url
from polyserve.context import Context  # noqa: TC001  # handlers' hints are read at run time
from polyserve.errors import ConfigurationError
from polyserve.events import Message  # noqa: TC001
from polyserve_testkit.servers import (
    HOST,
    _answers_ping,
    _require_executable,
    free_ports,
    running,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from polyserve_testkit.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def _client(url: str) -> Any:
    # Any: the redis stubs leave the stream commands untyped.
    return redis.Redis.from_url(url)


def _pending(client: Any, stream: str, group: str) -> int:
    return int(client.xpending(stream, group)["pending"])


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


async def _consume_until(consumer: RedisStreamConsumer, condition: Callable[[], bool]) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        await _until(lambda: condition() or task.done())
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)


def test_url_forms() -> None:
    assert parse_url("redis://h:1/orders") == parse_url("redis://h:1/0/orders")
    assert parse_url("redis://h:1/3/orders").url == "redis://h:1/3"
    for bad in ("h:1/orders", "redis://h:1", "redis://h:1/x/orders", "http://h/o"):
        with pytest.raises(ConfigurationError):
            parse_url(bad)


def test_entry_as_message() -> None:
    event = message("1700000000123-4", {b"body": b"\xff\x00", b"kind": b"a\xffb"}, "orders", 3)
    assert event.body == b"\xff\x00"
    assert event.attributes == {"kind": "a\ufffdb"}
    assert event.attempt == 3
    assert event.enqueued_at is not None
    assert event.enqueued_at.timestamp() == 1700000000.123
    assert event.id == "1700000000123-4"
    assert event.source == "orders"


def test_batches_are_handled_and_acknowledged(redis_server: RedisServer) -> None:
    client = _client(redis_server.url)
    stream = "orders-ok"
    ids = [client.xadd(stream, {"body": f"o{i}", "k": str(i)}).decode() for i in range(25)]
    seen: list[Message] = []
    app = App("consume")

    @app.queue(stream)
    def handle(event: Message) -> None:
        seen.append(event)

    consumer = RedisStreamConsumer(app, redis_server.url, stream, "g", count=7)
    asyncio.run(_consume_until(consumer, lambda: len(seen) == 25))
    assert [m.id for m in seen] == ids
    assert (seen[3].body, seen[3].attributes, seen[3].attempt) == (b"o3", {"k": "3"}, 1)
    assert _pending(client, stream, "g") == 0
    assert consumer.handled == 25


def test_failures_are_reclaimed_with_their_delivery_count(redis_server: RedisServer) -> None:
    client = _client(redis_server.url)
    stream = "orders-retry"
    flaky = client.xadd(stream, {"body": "flaky"}).decode()
    poison = client.xadd(stream, {"body": "poison"}).decode()
    client.xadd(stream, {"body": "fine"})
    attempts: dict[str, list[int]] = {}
    poisoned: list[tuple[str, int]] = []
    app = App("consume")

    def on_poison(event: Message, exc: Exception, context: Context) -> None:
        poisoned.append((event.id, event.attempt))

    @app.queue(stream, max_attempts=3, on_poison=on_poison)
    def handle(event: Message) -> None:
        attempts.setdefault(event.id, []).append(event.attempt)
        if event.body == b"poison" or (event.body == b"flaky" and event.attempt == 1):
            raise RuntimeError("not yet")

    consumer = RedisStreamConsumer(
        app, redis_server.url, stream, "g", min_idle=0.1, claim_interval=0.05, block=0.05
    )
    asyncio.run(_consume_until(consumer, lambda: bool(poisoned) and len(attempts[flaky]) == 2))
    assert attempts[flaky] == [1, 2]
    assert attempts[poison] == [1, 2, 3]
    assert poisoned == [(poison, 3)]
    assert _pending(client, stream, "g") == 0


def test_set_aside_is_acknowledged(redis_server: RedisServer) -> None:
    client = _client(redis_server.url)
    stream = "orders-aside"
    client.xadd(stream, {"body": "x"})
    app = App("consume")
    calls: list[str] = []

    @app.queue(stream)
    def handle(event: Message) -> SetAside:
        calls.append(event.id)
        return SetAside()

    consumer = RedisStreamConsumer(app, redis_server.url, stream, "g")
    asyncio.run(_consume_until(consumer, lambda: bool(calls) and consumer.handled == 1))
    assert _pending(client, stream, "g") == 0


_APP = """
import os, time
from polyserve import App

app = App("worker")
LOG = os.environ["CONSUME_LOG"]
DELAY = float(os.environ.get("CONSUME_DELAY", "0"))


@app.queue("jobs")
def handle(event):
    with open(LOG, "a") as f:
        f.write(f"start {event.id} {event.attempt}\\n")
    time.sleep(DELAY)
    with open(LOG, "a") as f:
        f.write(f"done {event.id} {event.attempt}\\n")
"""


def _worker(
    tmp_path: Path, url: str, name: str, delay: float, *extra: str
) -> subprocess.Popen[bytes]:
    (tmp_path / "worker_app.py").write_text(textwrap.dedent(_APP))
    env = {**os.environ, "CONSUME_LOG": str(tmp_path / f"{name}.log"), "CONSUME_DELAY": str(delay)}
    with (tmp_path / f"{name}.out").open("wb") as out:
        return subprocess.Popen(
        [sys.executable, "-m", "polyserve._cli", "consume", f"{url}/jobs", "worker_app:app",
         "--group", "workers", "--consumer", name, "--app-dir", str(tmp_path), "--count", "5",
         *extra],
        env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_a_killed_consumers_batch_is_finished_by_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = _client(redis_server.url)
    client.delete("jobs")
    ids = [client.xadd("jobs", {"body": str(i)}).decode() for i in range(10)]
    first = _worker(tmp_path, redis_server.url, "first", 0.3)
    try:
        _wait(lambda: any(w[0] == "done" for w in _lines(tmp_path / "first.log")))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    finished_first = {w[1] for w in _lines(tmp_path / "first.log") if w[0] == "done"}
    assert len(finished_first) < 10, "the kill came too late to leave work pending"
    second = _worker(tmp_path, redis_server.url, "second", 0.0, "--min-idle", "0.5")
    try:
        _wait(lambda: _pending(client, "jobs", "workers") == 0
              and {w[1] for w in _lines(tmp_path / "second.log") if w[0] == "done"}
              | finished_first >= set(ids))  # fmt: skip
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0
    finally:
        second.kill()
    done = [w for w in _lines(tmp_path / "second.log") if w[0] == "done"]
    # The batch the first consumer held (its first five) was never acknowledged, so all of
    # it is redelivered, records it finished included (at least once), on a second attempt.
    assert {w[1] for w in done if w[2] == "2"} == set(ids[:5])
    assert {w[1] for w in done if w[2] == "1"} == set(ids[5:])
    assert len(done) == 10


def test_sigterm_finishes_the_batch_in_hand(redis_server: RedisServer, tmp_path: Path) -> None:
    client = _client(redis_server.url)
    client.delete("jobs")
    for i in range(10):
        client.xadd("jobs", {"body": str(i)})
    worker = _worker(tmp_path, redis_server.url, "term", 0.2)
    try:
        _wait(lambda: bool(_lines(tmp_path / "term.log")))
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0, (tmp_path / "term.out").read_text()
    finally:
        worker.kill()
    lines = _lines(tmp_path / "term.log")
    started = [w[1] for w in lines if w[0] == "start"]
    done = [w[1] for w in lines if w[0] == "done"]
    assert started == done  # every started record finished
    assert 0 < len(done) < 10  # it stopped early...
    assert _pending(client, "jobs", "workers") == 0  # ...and acknowledged what it did


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Any:
    executable = _require_executable("redis-server")
    (port,) = free_ports(1)
    command = [
        executable, "--bind", HOST, "--port", str(port), "--dir", str(tmp_path), "--save", "",
        "--appendonly", "yes", "--appendfsync", "always",
    ]  # fmt: skip
    return port, (lambda: running("redis-server", command, lambda: _answers_ping(port), tmp_path))


def test_a_redis_restart_loses_nothing(restartable_redis: Any) -> None:
    port, server = restartable_redis
    url = f"redis://{HOST}:{port}/0"
    seen: list[str] = []
    app = App("consume")

    @app.queue("restart")
    def handle(event: Message) -> None:
        seen.append(event.text)

    async def scenario() -> None:
        consumer = RedisStreamConsumer(app, url, "restart", "g", block=0.1, max_backoff=0.2)
        with server():
            _client(url).xadd("restart", {"body": "before"})
            task = asyncio.create_task(consumer.run())
            await _until(lambda: seen == ["before"])
        await asyncio.sleep(0.5)  # the consumer meets a closed port and backs off
        assert not task.done()
        with server():
            _client(url).xadd("restart", {"body": "after"})
            await _until(lambda: seen == ["before", "after"])
            consumer.stop()
            await asyncio.wait_for(task, 10)
            assert _pending(_client(url), "restart", "g") == 0

    asyncio.run(scenario())
