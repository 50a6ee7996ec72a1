from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import App, MalformedEventError, Message, PolyserveError, UnsupportedEventError
from polyserve.retry import Retry
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare._queue import body_bytes
from polyserve_cloudflare._queue import to_message as to_event
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeBuffer,
    FakeDate,
    FakeExecutionContext,
    FakeJsValue,
    FakeMessage,
    FakeRuntime,
)

if TYPE_CHECKING:
    from polyserve_cloudflare import Entrypoint

    from .conftest import Seen

ENQUEUED = dt.datetime(2025, 3, 1, 12, 30, 15, 250000, tzinfo=dt.timezone.utc)


def deliver(worker: Entrypoint, queue: str, *messages: FakeMessage) -> None:
    asyncio.run(worker.queue(FakeBatch(queue, list(messages))))


def test_message_is_translated(worker: Entrypoint, seen: Seen) -> None:
    native = FakeMessage("m-1", "héllo", FakeDate.from_datetime(ENQUEUED), attempts=3)
    deliver(worker, "orders", native)
    (message,) = seen.messages
    assert message == Message(
        id="m-1", body="héllo".encode(), attempt=3, enqueued_at=ENQUEUED, source="orders"
    )
    assert message.raw is native
    assert native.settled == "acked"


def test_each_message_is_settled_on_its_own(worker: Entrypoint, seen: Seen) -> None:
    ok, failing, also_ok = (
        FakeMessage("1", "fine"),
        FakeMessage("2", "fail"),
        FakeMessage("3", FakeBuffer(b"\x00\x01")),
    )
    deliver(worker, "orders", ok, failing, also_ok)
    assert [m.settled for m in (ok, failing, also_ok)] == ["acked", "retried", "acked"]
    assert failing.retry_options is None
    assert [m.id for m in seen.messages] == ["1", "2", "3"]


@pytest.mark.parametrize(
    "native",
    [
        FakeMessage("bad-body", object()),
        FakeMessage("nan-body", math.nan),
        FakeMessage("infinity-inside", FakeJsValue({"n": math.inf})),
        FakeMessage("surrogate", "\ud800"),
        FakeMessage("bad-time", "x", timestamp="yesterday"),
        FakeMessage("invalid-date", "x", timestamp=FakeDate(math.nan)),
        FakeMessage("bad-attempts", "x", attempts=0),
    ],
    ids=lambda m: m.id,
)
def test_undecodable_messages_are_retried_never_acked(
    worker: Entrypoint, seen: Seen, native: FakeMessage
) -> None:
    good = FakeMessage("good", "ok")
    deliver(worker, "orders", native, good)
    assert native.settled == "retried"
    assert good.settled == "acked"
    assert [m.id for m in seen.messages] == ["good"]


def test_messages_of_an_unregistered_queue_are_retried(worker: Entrypoint, seen: Seen) -> None:
    native = FakeMessage("1", "x")
    deliver(worker, "unknown-queue", native)
    assert native.settled == "retried"
    assert seen.messages == []


def test_names_map_a_queue_to_its_logical_name(app: App, seen: Seen) -> None:
    cls = entrypoint(app, names={"orders-prod": "orders"}, runtime=FakeRuntime())
    native = FakeMessage("1", "x")
    asyncio.run(cls(FakeExecutionContext(), {}).queue(FakeBatch("orders-prod", [native])))
    assert native.settled == "acked"
    assert seen.messages[0].source == "orders"


def test_retry_delay_is_passed_as_delay_seconds(app: App) -> None:
    cls = entrypoint(app, retry_delay=120, runtime=FakeRuntime())
    native = FakeMessage("1", "fail")
    asyncio.run(cls(FakeExecutionContext(), {}).queue(FakeBatch("orders", [native])))
    assert native.retry_options == {"delaySeconds": 120}


def test_a_handler_asking_for_a_delay_gets_it_rounded_up_and_capped() -> None:
    app = App("delays")

    @app.queue("jobs")
    def job(message: Message) -> None:
        raise Retry(delay=float(message.text))

    cls = entrypoint(app, retry_delay=5, runtime=FakeRuntime())
    short, long_ = FakeMessage("1", "1.2"), FakeMessage("2", "999999")
    asyncio.run(cls(FakeExecutionContext(), {}).queue(FakeBatch("jobs", [short, long_])))
    assert short.retry_options == {"delaySeconds": 2}
    assert long_.retry_options == {"delaySeconds": 86_400}


def test_poison_messages_set_aside_are_acked() -> None:
    app = App("poison")
    taken: list[str] = []

    def on_poison(message: Message, exc: Exception, ctx: Any) -> None:
        taken.append(message.id)

    @app.queue("jobs", max_attempts=3, on_poison=on_poison)
    def job(message: Message) -> None:
        raise RuntimeError("always fails")

    cls = entrypoint(app, runtime=FakeRuntime())
    early, last = FakeMessage("1", "x", attempts=1), FakeMessage("2", "x", attempts=3)
    asyncio.run(cls(FakeExecutionContext(), {}).queue(FakeBatch("jobs", [early, last])))
    assert (early.settled, last.settled) == ("retried", "acked")
    assert taken == ["2"]


def test_queue_context_has_the_event_deadline(worker: Entrypoint, seen: Seen) -> None:
    deliver(worker, "orders", FakeMessage("1", "x"))
    (ctx,) = seen.contexts
    assert ctx.provider == "cloudflare"
    assert len(ctx.invocation_id) == 32
    assert ctx.deadline is not None
    assert abs(ctx.deadline - (time.time() + 900)) < 5


def test_a_failing_ack_fails_the_invocation_after_settling_the_rest(worker: Entrypoint) -> None:
    class Stuck(FakeMessage):
        def ack(self) -> None:
            raise RuntimeError("ack failed")

    stuck, failing = Stuck("1", "x"), FakeMessage("2", "fail")
    with pytest.raises(PolyserveError) as info:
        deliver(worker, "orders", stuck, failing)
    assert info.value.code == "queue_settle_failed"
    assert failing.settled == "retried"


def test_a_failing_ack_is_logged_in_one_line_without_a_traceback(
    worker: Entrypoint, caplog: pytest.LogCaptureFixture
) -> None:
    class Stuck(FakeMessage):
        def ack(self) -> None:
            raise RuntimeError("ack failed")

    caplog.set_level(logging.ERROR, logger="polyserve")
    with pytest.raises(PolyserveError):
        deliver(worker, "orders", Stuck("1", "x"))
    logged = [json.loads(r.getMessage()) for r in caplog.records]
    [line] = [entry for entry in logged if entry["message"] == "queue message ack failed"]
    assert (line["item_id"], line["error_type"], line["error_message"]) == (
        "1", "RuntimeError", "ack failed",
    )  # fmt: skip
    assert (line["error_file"], line["error_function"]) == (__file__, "ack")
    assert "traceback" not in line


def test_queue_rejects_what_is_not_a_batch(worker: Entrypoint) -> None:
    with pytest.raises(UnsupportedEventError):
        asyncio.run(worker.queue([FakeMessage("1", "x")]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text é", "text é".encode()),
        (b"raw", b"raw"),
        (FakeBuffer(b"\x00\xff"), b"\x00\xff"),
        (FakeJsValue({"a": [1, None, "é"]}), '{"a":[1,null,"é"]}'.encode()),
        (FakeJsValue([]), b"[]"),
        (42, b"42"),
        (1.5, b"1.5"),
        (True, b"true"),
        (None, b"null"),
    ],
)
def test_body_bytes(value: Any, expected: bytes) -> None:
    assert body_bytes(value, FakeRuntime()) == expected


def test_body_without_json_form_is_malformed() -> None:
    class Undefined(FakeRuntime):
        def json_stringify(self, value: Any) -> str | None:
            return None  # what JSON.stringify gives for a function

    with pytest.raises(MalformedEventError):
        body_bytes(FakeJsValue(None), Undefined())


def test_to_event_accepts_datetime_and_millisecond_timestamps() -> None:
    runtime = FakeRuntime()
    # A naive datetime is local time, as the workers SDK makes it from a Date.
    local = dt.datetime.fromtimestamp(ENQUEUED.timestamp())
    for stamp in (ENQUEUED, ENQUEUED.timestamp() * 1000, local):
        event = to_event(FakeMessage("1", "x", timestamp=stamp), "orders", runtime)
        assert event.enqueued_at == ENQUEUED


def test_bodies_the_sdk_already_converted_are_compact_json() -> None:
    # Cloudflare's workers SDK gives a class-based entrypoint dicts and lists.
    runtime = FakeRuntime()
    assert body_bytes({"ok": True, "n": [1, None], "é": "ü"}, runtime) == (
        '{"ok":true,"n":[1,null],"é":"ü"}'.encode()
    )
    assert body_bytes([1, 2.5, "x"], runtime) == b'[1,2.5,"x"]'
    with pytest.raises(MalformedEventError, match="no JSON form"):
        body_bytes({"n": float("nan")}, runtime)
    with pytest.raises(MalformedEventError, match="no JSON form"):
        body_bytes({"f": object()}, runtime)
