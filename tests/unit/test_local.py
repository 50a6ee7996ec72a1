"""Local triggers: endpoints, deliveries with the clouds' retry rules, schedules, SQLite state."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import App, CloudEvent, Message, StorageEvent, StreamRecord
from polyserve.errors import ConfigurationError
from polyserve.local import LocalServer
from polyserve.local._cron import Cron
from polyserve.retry import Retry

if TYPE_CHECKING:
    from pathlib import Path


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _app(seen: list[Any]) -> App:
    app = App("local")

    def poisoned(event: Message, exc: Exception, ctx: object) -> None:
        seen.append(("poison", event.json()))

    @app.queue("orders", max_attempts=3, on_poison=poisoned)
    def orders(msg: Message) -> None:
        data = msg.json()
        seen.append((msg.attempt, data))
        if data.get("retry"):
            raise Retry(delay=30)
        if data.get("fail"):
            raise ValueError("boom")

    @app.storage("uploads")
    def uploaded(event: StorageEvent) -> None:
        seen.append((event.action.value, event.key, event.size))

    @app.stream("changes")
    def changed(record: StreamRecord) -> None:
        seen.append((record.change.value, dict(record.keys)))

    @app.cloudevent("audit")
    def audit(event: CloudEvent) -> None:
        seen.append((event.type, event.data))

    @app.schedule("nightly", cron="0 3 * * *")
    def nightly() -> dict[str, int]:
        seen.append("nightly")
        return {"pets": 2}

    return app


async def _call(server: LocalServer, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "headers": []}
    await server(scope, receive, send)
    headers = dict(sent[0]["headers"])
    if sent[0]["status"] >= 400:
        assert headers[b"content-type"] == b"application/problem+json"
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_queue_delivery_retries_and_sets_aside(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []
    clock = Clock()
    server = LocalServer(_app(seen), clock=clock)

    async def main() -> None:
        status, out = await _call(server, "POST", "/_polyserve/queues/orders", b'{"id": 1}')
        assert (status, out["state"]) == (202, "pending")
        assert await server.deliver_due() == 1
        assert seen == [(1, {"id": 1})]
        _, msg = await _call(server, "GET", f"/_polyserve/messages/{out['id']}")
        assert msg["state"] == "done"

        _, out = await _call(server, "POST", "/_polyserve/queues/orders", b'{"retry": true}')
        await server.deliver_due()
        _, msg = await _call(server, "GET", f"/_polyserve/messages/{out['id']}")
        assert (msg["attempt"], msg["due"]) == (2, clock.now + 30)  # Retry(delay=30) honoured
        clock.now += 29
        assert await server.deliver_due() == 0
        clock.now += 1
        assert await server.deliver_due() == 1

        seen.clear()
        _, out = await _call(server, "POST", "/_polyserve/queues/orders", b'{"fail": true}')
        await server.deliver_due()  # attempt 1 fails: backoff 1s
        clock.now += 1
        await server.deliver_due()  # attempt 2 fails: backoff 2s
        clock.now += 1
        assert await server.deliver_due() == 0
        clock.now += 1
        await server.deliver_due()  # attempt 3 = max_attempts: on_poison, set aside
        assert seen == [(1, {"fail": True}), (2, {"fail": True}), (3, {"fail": True}),
                        ("poison", {"fail": True})]  # fmt: skip
        _, listing = await _call(server, "GET", "/_polyserve/messages")
        states = {m["id"]: m["state"] for m in listing}
        assert states[out["id"]] == "set_aside"

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if "local delivery" in r.getMessage()
    ]
    assert {line["outcome"] for line in lines} == {"done", "retry", "set_aside"}
    assert all("message_id" in line and "attempt" in line for line in lines)
    assert not any("fail" in r.getMessage() and "body" in r.getMessage() for r in caplog.records)


def test_other_kinds_and_bad_bodies() -> None:
    seen: list[Any] = []
    server = LocalServer(_app(seen))

    async def main() -> None:
        for path, body in [
            ("/_polyserve/storage/uploads", {"key": "a.png", "size": 3}),
            ("/_polyserve/streams/changes", {"change": "modify", "keys": {"id": 1}}),
            ("/_polyserve/cloudevents/audit", {"type": "pet.seen", "data": [1]}),
        ]:
            status, _ = await _call(server, "POST", path, json.dumps(body).encode())
            assert status == 202
        await server.deliver_due()
        assert seen == [("created", "a.png", 3), ("modify", {"id": 1}), ("pet.seen", [1])]
        bad = [
            ("/_polyserve/storage/uploads", b"{not json", "the body is not JSON"),
            ("/_polyserve/storage/uploads", b"[1]", "must be a JSON object"),
            ("/_polyserve/storage/uploads", b"{}", "needs the field 'key'"),
            ("/_polyserve/storage/uploads", b'{"key": "k", "action": "x"}', "'x'"),
            ("/_polyserve/cloudevents/audit", b"{}", "needs the field 'type'"),
            ("/_polyserve/queues/orders", b"\xff", "UTF-8"),
        ]
        for path, body, detail in bad:
            status, problem = await _call(server, "POST", path, body)
            assert status == 400, path
            assert problem["code"] == "malformed_event"
            assert detail in problem["detail"]
        status, problem = await _call(server, "POST", "/_polyserve/queues/nope", b"x")
        assert (status, problem["code"]) == (404, "not_registered")
        status, _ = await _call(server, "POST", "/_polyserve/bogus/x", b"x")
        assert status == 404
        status, out = await _call(server, "POST", "/_polyserve/schedules/nightly")
        assert (status, out) == (200, {"name": "nightly", "result": {"pets": 2}})

    asyncio.run(main())


def test_state_survives_a_restart(tmp_path: Path) -> None:
    seen: list[Any] = []
    path = str(tmp_path / "state.sqlite")

    async def enqueue() -> str:
        server = LocalServer(_app(seen), state=path)
        _, out = await _call(server, "POST", "/_polyserve/queues/orders", b'{"id": 9}')
        server.store.close()
        return str(out["id"])

    async def deliver() -> None:
        server = LocalServer(_app(seen), state=path)
        assert await server.deliver_due() == 1

    asyncio.run(enqueue())
    assert seen == []
    asyncio.run(deliver())
    assert seen == [(1, {"id": 9})]


def test_cron() -> None:
    at = dt.datetime(2024, 5, 1, 10, 17)
    assert Cron("0 3 * * *").next_after(at) == dt.datetime(2024, 5, 2, 3, 0)
    assert Cron("*/15 * * * *").next_after(at) == dt.datetime(2024, 5, 1, 10, 30)
    assert Cron("0 9 * * mon-fri").next_after(dt.datetime(2024, 5, 3, 9, 0)) == dt.datetime(
        2024, 5, 6, 9, 0
    )
    assert Cron("30 2 1 jan *").next_after(at) == dt.datetime(2025, 1, 1, 2, 30)
    with pytest.raises(ConfigurationError, match="invalid"):
        Cron("61 * * * *")
    with pytest.raises(ConfigurationError, match="five fields"):
        Cron("* * *")


def test_fire_at_start() -> None:
    seen: list[Any] = []
    server = LocalServer(_app(seen), fire=["nightly"])

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(server.run())
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(main())
    assert seen == ["nightly"]
    with pytest.raises(
        ConfigurationError, match="no schedule 'weekly' to fire; schedules: nightly"
    ):
        LocalServer(_app([]), fire=["weekly"])


def test_serve_rejects_an_unknown_schedule_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from polyserve._cli import main

    (tmp_path / "firing.py").write_text('from polyserve import App\n\napp = App("firing")\n')
    status = main(["serve", "firing:app", "--app-dir", str(tmp_path), "--fire", "nightly"])
    assert status == 2
    assert capsys.readouterr().err == (
        "polyserve: error: no schedule 'nightly' to fire; schedules: none\n"
    )
