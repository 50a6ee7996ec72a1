"""R2 event notifications delivered through a queue reach ``@app.storage`` as ``StorageEvent``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from polyserve import App, StorageAction, StorageEvent
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeDate,
    FakeExecutionContext,
    FakeJsValue,
    FakeMessage,
    FakeRuntime,
)

SAMPLE = Path(__file__).parent / "events" / "queue-r2-notifications.json"


def _messages(data: dict[str, Any], *, python_bodies: bool = False) -> list[FakeMessage]:
    # python_bodies: as Cloudflare's workers SDK hands them over, already dicts.
    return [
        FakeMessage(
            m["id"],
            m["body"] if python_bodies else FakeJsValue(m["body"]),
            FakeDate.from_datetime(
                dt.datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
            ),
            m["attempts"],
        )
        for m in data["messages"]
    ]


class Photos:
    def __init__(self, **options: Any) -> None:
        self.app = App("photos")
        self.seen: list[StorageEvent] = []

        @self.app.storage("photos", actions=("created", "deleted"))
        def on_photo(event: StorageEvent) -> None:
            self.seen.append(event)
            if event.key.startswith("fail/"):
                raise RuntimeError("thumbnail failed")

        self.worker = entrypoint(self.app, runtime=FakeRuntime(), **options)(
            FakeExecutionContext(), {}
        )

    def deliver(self, queue: str, messages: list[FakeMessage]) -> Any:
        return asyncio.run(self.worker.queue(FakeBatch(queue, messages)))


@pytest.mark.parametrize("python_bodies", [False, True], ids=["js-bodies", "sdk-bodies"])
def test_every_sample_notification_becomes_a_storage_event(python_bodies: bool) -> None:
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    photos = Photos()
    messages = _messages(data, python_bodies=python_bodies)
    photos.deliver(data["queue"], messages)
    assert [m.settled for m in messages] == ["acked"] * 5
    put, copy, multipart, delete, lifecycle = photos.seen
    assert put == StorageEvent(
        id="0b6f3c1e9d2a4f57a8c3e1d0b9f8a7c6",
        action=StorageAction.CREATED,
        bucket="photos",
        key="albums/2025/lake é.jpg",
        size=482113,
        etag="5d41402abc4b2a76b9719d911017c592",
        occurred_at=dt.datetime(2025, 7, 14, 8, 2, 11, 512000, tzinfo=dt.timezone.utc),
    )
    assert put.raw is messages[0]
    assert (copy.action, copy.key) == (StorageAction.CREATED, "albums/2025/lake-copy.jpg")
    assert (multipart.action, multipart.size) == (StorageAction.CREATED, 73400320)
    assert (delete.action, delete.size, delete.etag) == (StorageAction.DELETED, None, None)
    assert (lifecycle.action, lifecycle.key) == (StorageAction.DELETED, "tmp/upload-81f2.part")


def _notification(key: str, action: str = "PutObject", **extra: Any) -> dict[str, Any]:
    return {
        "account": "acct",
        "action": action,
        "bucket": "photos",
        "object": {"key": key, "size": 3, "eTag": "e"},
        "eventTime": "2025-07-14T08:02:11.512Z",
        **extra,
    }


def test_a_bad_notification_is_retried_alone() -> None:
    photos = Photos()
    bodies: list[Any] = [
        _notification("ok.jpg"),
        _notification("fail/x.jpg"),  # the handler raises
        _notification("y.jpg", action="RestoreObject"),  # no storage action
        {"action": "PutObject", "bucket": "photos"},  # no object
        _notification("z.jpg", object={"key": "z.jpg", "size": -1}),
        "not json at all",
        _notification("t.jpg", eventTime="yesterday"),
    ]
    messages = [
        FakeMessage(f"m{i}", FakeJsValue(b) if isinstance(b, dict) else b)
        for i, b in enumerate(bodies)
    ]
    photos.deliver("photo-events", messages)
    assert [m.settled for m in messages] == ["acked"] + ["retried"] * 6
    assert [e.key for e in photos.seen] == ["ok.jpg", "fail/x.jpg"]


def test_buckets_map_through_names() -> None:
    photos = Photos(names={"photos-prod-eu": "photos"})
    message = FakeMessage("m1", FakeJsValue(_notification("a.jpg", bucket="photos-prod-eu")))
    photos.deliver("photo-events", [message])
    assert message.settled == "acked"
    assert photos.seen[0].bucket == "photos-prod-eu"


def test_an_action_not_registered_is_retried() -> None:
    app = App("only-created")
    seen: list[StorageEvent] = []
    app.storage("photos", actions=("created",))(seen.append)
    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    created = FakeMessage("c", FakeJsValue(_notification("a.jpg")))
    deleted = FakeMessage("d", FakeJsValue(_notification("a.jpg", action="DeleteObject")))
    asyncio.run(worker.queue(FakeBatch("photo-events", [created, deleted])))
    assert (created.settled, deleted.settled) == ("acked", "retried")
    assert [e.action for e in seen] == [StorageAction.CREATED]


def test_a_queue_handler_keeps_its_queue() -> None:
    # A queue that @app.queue consumes is read as plain messages, even with storage handlers.
    photos = Photos()
    bodies: list[bytes] = []
    photos.app.queue("photo-events")(lambda message: bodies.append(message.body))
    message = FakeMessage("m1", FakeJsValue(_notification("a.jpg")))
    photos.deliver("photo-events", [message])
    assert message.settled == "acked"
    assert photos.seen == []
    assert json.loads(bodies[0])["action"] == "PutObject"
