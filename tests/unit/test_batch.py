from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from tests.support.unreadable import unreadable

from polyserve import (
    App,
    BatchResult,
    ConfigurationError,
    Context,
    ItemFailure,
    MalformedEventError,
    Message,
    Trigger,
)
from polyserve.batch import SET_ASIDE, process_batch, process_batch_async
from polyserve.retry import Retry

Record = dict[str, Any]

ORDER_BROKEN = "not processed: an earlier record in order failed"
DEADLINE = "not processed: deadline"


def _record(ident: str, body: str = "ok", attempt: int = 1) -> Record:
    return {"messageId": ident, "body": body, "attempt": attempt}


def _decode(record: Record) -> tuple[str, object]:
    if record["body"] == "garbage":
        raise MalformedEventError("record is not a queue message")
    return "orders", Message(id=record["messageId"], body=record["body"].encode(),
                             attempt=record["attempt"])  # fmt: skip


def _item_id(record: Record) -> str:
    return str(record["messageId"])


class Clock:
    """A wall clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _ctx(clock: Clock | None = None, timeout: float | None = None) -> Context:
    clock = clock or Clock()
    deadline = None if timeout is None else clock.now + timeout
    return Context("test", invocation_id="inv-1", deadline=deadline, clock=clock)


class Shop:
    """An app whose ``orders`` handler acts on the message body."""

    def __init__(self, **options: Any) -> None:
        self.app = App("shop")
        self.handled: list[str] = []
        self.app.queue("orders", **options)(self.on_order)

    def on_order(self, msg: Message) -> str:
        body = msg.text
        if body == "boom":
            raise ValueError(f"cannot handle {msg.id}")
        if body.startswith("retry"):
            delay = body.partition(":")[2]
            raise Retry("rate limited", delay=float(delay) if delay else None)
        self.handled.append(msg.id)
        return f"done {msg.id}"

    def batch(
        self, records: list[Record], *, ordered: bool = False, ctx: Context | None = None
    ) -> BatchResult:
        return self.app.handle_batch(
            Trigger.QUEUE, records, ctx or _ctx(), decode=_decode, item_id=_item_id,
            ordered=ordered,
        )  # fmt: skip


class Poison:
    """An ``on_poison`` hook that records its calls and may fail."""

    def __init__(self, *, fails: bool = False) -> None:
        self.calls: list[tuple[Message, BaseException, Context]] = []
        self.fails = fails

    def __call__(self, event: Message, exc: BaseException, ctx: Context) -> None:
        self.calls.append((event, exc, ctx))
        if self.fails:
            raise OSError("dead-letter queue unreachable")


def _log_records(caplog: pytest.LogCaptureFixture, level: int) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.levelno == level]


# -- result shape ----------------------------------------------------------------


def test_batch_result_stays_backward_compatible() -> None:
    result = BatchResult(("a", "b"), (ItemFailure("c", "handler failed"),))
    assert result.set_aside == ()
    assert result.failed_ids == ["c"]
    assert result.acknowledged == ("a", "b")
    assert not result.is_complete_success
    assert ItemFailure("c", "why").retry_delay is None
    assert BatchResult(("a",), (), ("p",)).is_complete_success


def test_every_record_succeeding_is_a_complete_success() -> None:
    shop = Shop()
    result = shop.batch([_record("1"), _record("2")])
    assert result == BatchResult(("1", "2"), ())
    assert result.is_complete_success
    assert shop.handled == ["1", "2"]


def test_a_failing_record_fails_alone() -> None:
    shop = Shop()
    result = shop.batch([_record("1"), _record("2", "boom"), _record("3", "garbage")])
    assert result.succeeded == ("1",)
    assert result.failed_ids == ["2", "3"]
    assert [f.reason for f in result.failed] == ["handler failed", "could not be decoded"]
    assert isinstance(result.failed[0].error, ValueError)
    assert isinstance(result.failed[1].error, MalformedEventError)


# -- Retry ---------------------------------------------------------------------------


def test_a_retry_hand_off_fails_the_record_with_its_delay() -> None:
    shop = Shop()
    result = shop.batch([_record("1", "retry:30"), _record("2"), _record("3", "retry")])
    assert result.succeeded == ("2",)
    first, third = result.failed
    assert (first.item_id, first.retry_delay, first.reason) == (
        "1",
        30.0,
        "retry requested: rate limited",
    )
    assert isinstance(first.error, Retry)
    assert (third.item_id, third.retry_delay) == ("3", None)


def test_a_retry_hand_off_is_logged_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="polyserve")
    Shop().batch([_record("1", "retry:5")])
    infos = _log_records(caplog, logging.INFO)
    assert infos == [
        {"level": "INFO", "message": "record handed back for redelivery", "item_id": "1",
         "delay": 5.0, "reason": "rate limited", "provider": "test", "invocation_id": "inv-1",
         "function_name": "", "is_cold_start": infos[0]["is_cold_start"]}
    ]  # fmt: skip
    assert _log_records(caplog, logging.ERROR) == []


def test_a_retry_in_an_ordered_batch_stops_it() -> None:
    shop = Shop()
    result = shop.batch([_record("1"), _record("2", "retry:9"), _record("3")], ordered=True)
    assert result.succeeded == ("1",)
    assert result.failed_ids == ["2", "3"]
    assert [f.retry_delay for f in result.failed] == [9.0, None]
    assert result.failed[1].reason == ORDER_BROKEN
    assert shop.handled == ["1"]


def test_a_single_event_retry_propagates_to_the_host() -> None:
    shop = Shop()
    with pytest.raises(Retry) as info:
        shop.app.handle_event(Trigger.QUEUE, "orders", Message(id="x", body=b"retry:4"), _ctx())
    assert info.value.delay == 4.0


# -- poison messages -----------------------------------------------------------------


def test_a_poison_message_is_set_aside_when_on_poison_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="polyserve")
    poison = Poison()
    shop = Shop(max_attempts=3, on_poison=poison)
    ctx = _ctx()
    result = shop.batch(
        [_record("1"), _record("2", "boom", attempt=3), _record("3", "boom", attempt=2)], ctx=ctx
    )
    assert result.succeeded == ("1",)
    assert result.set_aside == ("2",)
    assert result.failed_ids == ["3"]
    assert result.acknowledged == ("1", "2")
    [(event, exc, hook_ctx)] = poison.calls
    assert (event.id, event.attempt, hook_ctx) == ("2", 3, ctx)
    assert isinstance(exc, ValueError)
    [warning] = _log_records(caplog, logging.WARNING)
    assert warning["message"] == "poison message set aside"
    assert (warning["message_id"], warning["attempt"], warning["max_attempts"]) == ("2", 3, 3)
    assert warning["error_type"] == "ValueError"


def test_a_message_past_max_attempts_is_poison_too() -> None:
    poison = Poison()
    shop = Shop(max_attempts=3, on_poison=poison)
    assert shop.batch([_record("1", "boom", attempt=7)]).set_aside == ("1",)


def test_a_succeeding_message_on_its_last_attempt_is_not_poison() -> None:
    poison = Poison()
    shop = Shop(max_attempts=3, on_poison=poison)
    result = shop.batch([_record("1", attempt=3)])
    assert result.succeeded == ("1",)
    assert poison.calls == []


def test_a_poison_message_stays_failed_when_on_poison_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    shop = Shop(max_attempts=2, on_poison=Poison(fails=True))
    result = shop.batch([_record("1", "boom", attempt=2), _record("2")])
    assert result.set_aside == ()
    assert result.failed_ids == ["1"]
    failure = result.failed[0]
    # The platform sees the handler's own failure, untouched by the hook's.
    assert isinstance(failure.error, ValueError)
    assert failure.error.__context__ is None
    messages = [r["message"] for r in _log_records(caplog, logging.ERROR)]
    assert "on_poison failed; the message stays failed" in messages


def test_max_attempts_without_on_poison_logs_and_keeps_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    shop = Shop(max_attempts=2)
    result = shop.batch([_record("1", "boom", attempt=5)])
    assert result.failed_ids == ["1"]
    assert result.set_aside == ()
    flagged = [r for r in _log_records(caplog, logging.ERROR) if r["message"].startswith("poison")]
    assert [(r["message_id"], r["attempt"], r["max_attempts"]) for r in flagged] == [("1", 5, 2)]


def test_a_set_aside_message_does_not_stop_an_ordered_batch() -> None:
    shop = Shop(max_attempts=3, on_poison=Poison())
    result = shop.batch([_record("1"), _record("2", "boom", attempt=3), _record("3")], ordered=True)
    assert result.succeeded == ("1", "3")
    assert result.set_aside == ("2",)
    assert result.failed == ()


def test_a_retry_on_the_last_attempt_is_poison_as_well() -> None:
    poison = Poison()
    shop = Shop(max_attempts=4, on_poison=poison)
    assert shop.batch([_record("1", "retry:60", attempt=4)]).set_aside == ("1",)
    assert isinstance(poison.calls[0][1], Retry)


def test_a_payload_that_never_validates_can_be_set_aside() -> None:
    app = App("shop")
    poison = Poison()

    @app.queue("orders", max_attempts=2, on_poison=poison)
    def on_order(order: dict[str, Any]) -> None: ...

    result = app.handle_batch(
        Trigger.QUEUE, [_record("1", "{not json", attempt=2)], _ctx(), decode=_decode,
        item_id=_item_id,
    )  # fmt: skip
    assert result.set_aside == ("1",)
    assert isinstance(poison.calls[0][1], MalformedEventError)


def test_an_undecodable_record_is_never_poison() -> None:
    poison = Poison()
    shop = Shop(max_attempts=1, on_poison=poison)
    result = shop.batch([_record("1", "garbage", attempt=9)])
    assert result.failed_ids == ["1"]
    assert poison.calls == []


def test_a_single_poison_event_returns_none_so_the_platform_acknowledges_it() -> None:
    poison = Poison()
    shop = Shop(max_attempts=5, on_poison=poison)
    msg = Message(id="m", body=b"boom", attempt=5)
    assert shop.app.handle_event(Trigger.QUEUE, "orders", msg, _ctx()) is None
    assert [c[0] for c in poison.calls] == [msg]


def test_a_single_poison_event_whose_hook_fails_raises_the_handler_error() -> None:
    shop = Shop(max_attempts=5, on_poison=Poison(fails=True))
    msg = Message(id="m", body=b"boom", attempt=6)
    with pytest.raises(ValueError, match="cannot handle m") as info:
        shop.app.handle_event(Trigger.QUEUE, "orders", msg, _ctx())
    assert info.value.__context__ is None


def test_a_single_event_before_its_last_attempt_raises_as_usual() -> None:
    poison = Poison()
    shop = Shop(max_attempts=5, on_poison=poison)
    with pytest.raises(ValueError, match="cannot handle m"):
        shop.app.handle_event(Trigger.QUEUE, "orders", Message(id="m", body=b"boom"), _ctx())
    assert poison.calls == []


def test_an_async_hook_is_awaited_on_both_paths() -> None:
    app = App("shop")
    seen: list[str] = []

    async def to_dead_letter(event: Message, exc: BaseException, ctx: Context) -> None:
        await asyncio.sleep(0)
        seen.append(event.id)

    @app.queue("orders", max_attempts=1, on_poison=to_dead_letter)
    def on_order(msg: Message) -> None:
        raise ValueError("no")

    ctx = _ctx()
    records = [_record("a"), _record("b")]
    sync_result = app.handle_batch(Trigger.QUEUE, records, ctx, decode=_decode, item_id=_item_id)
    async_result = asyncio.run(
        app.handle_batch_async(Trigger.QUEUE, records, ctx, decode=_decode, item_id=_item_id)
    )
    assert sync_result.set_aside == async_result.set_aside == ("a", "b")
    assert seen == ["a", "b", "a", "b"]


def test_async_paths_set_aside_and_keep_failures_like_the_sync_ones() -> None:
    app = App("shop")
    poison = Poison()

    @app.queue("orders", max_attempts=2, on_poison=poison)
    async def on_order(msg: Message) -> str:
        if msg.text == "boom":
            raise ValueError(msg.id)
        if msg.text == "retry":
            raise Retry(delay=3)
        return msg.id

    records = [
        _record("1"),
        _record("2", "boom", 2),
        _record("3", "boom", 1),
        _record("4", "retry"),
    ]
    ctx = _ctx()
    result = asyncio.run(
        app.handle_batch_async(Trigger.QUEUE, records, ctx, decode=_decode, item_id=_item_id)
    )
    assert result.succeeded == ("1",)
    assert result.set_aside == ("2",)
    assert result.failed_ids == ["3", "4"]
    assert result.failed[1].retry_delay == 3
    single = Message(id="s", body=b"boom", attempt=2)
    assert asyncio.run(app.handle_event_async(Trigger.QUEUE, "orders", single, ctx)) is None
    assert [c[0].id for c in poison.calls] == ["2", "s"]


def test_an_async_path_hook_that_fails_keeps_the_message_failed() -> None:
    shop = Shop(max_attempts=1, on_poison=Poison(fails=True))
    msg = Message(id="m", body=b"boom", attempt=1)
    with pytest.raises(ValueError, match="cannot handle m"):
        asyncio.run(shop.app.handle_event_async(Trigger.QUEUE, "orders", msg, _ctx()))


# -- registration options ------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"max_attempts": -3},
        {"max_attempts": True},
        {"max_attempts": "5"},
        {"max_attempts": 2.0},
        {"max_attempts": 3, "on_poison": "dead-letter"},
        {"on_poison": Poison()},
    ],
)
def test_invalid_poison_options_fail_at_registration(options: dict[str, Any]) -> None:
    app = App("shop")
    with pytest.raises(ConfigurationError):
        app.queue("orders", **options)(lambda msg: None)
    assert app.registrations == ()


@pytest.mark.parametrize("trigger", [Trigger.SCHEDULE, Trigger.STORAGE, Trigger.CLOUDEVENT])
def test_poison_options_are_refused_where_events_carry_no_delivery_count(
    trigger: Trigger,
) -> None:
    with pytest.raises(ConfigurationError, match="delivery count"):
        App("shop").register(trigger, "nightly", lambda event: None, max_attempts=3)


@pytest.mark.parametrize("trigger", [Trigger.QUEUE, Trigger.TOPIC, Trigger.STREAM])
def test_valid_poison_options_are_kept_for_adapters(trigger: Trigger) -> None:
    poison = Poison()
    reg = App("shop").register(
        trigger, "orders", lambda msg: None, max_attempts=5, on_poison=poison
    )
    assert reg.options == {"max_attempts": 5, "on_poison": poison}


# -- deadlines -----------------------------------------------------------------------


def test_the_batch_stops_near_the_deadline_and_reports_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="polyserve")
    clock = Clock()
    ctx = _ctx(clock, timeout=3.5)
    app = App("shop")
    handled: list[str] = []

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        handled.append(msg.id)
        clock.now += 1.0  # every record takes a second

    records = [_record(str(i)) for i in range(6)]
    result = app.handle_batch(Trigger.QUEUE, records, ctx, decode=_decode, item_id=_item_id)
    # Before record 3, 0.5 s are left: less than the default 1 s margin.
    assert handled == ["0", "1", "2"]
    assert result.succeeded == ("0", "1", "2")
    assert result.failed == tuple(ItemFailure(str(i), DEADLINE) for i in (3, 4, 5))
    [warning] = _log_records(caplog, logging.WARNING)
    assert warning["unprocessed"] == 3
    assert warning["remaining_time"] == pytest.approx(0.5)


def test_the_margin_comes_from_the_app() -> None:
    clock = Clock()
    app = App("shop", batch_deadline_margin=2.0)

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        clock.now += 1.0

    ctx = _ctx(clock, timeout=3.5)
    records = [_record(str(i)) for i in range(4)]
    result = app.handle_batch(Trigger.QUEUE, records, ctx, decode=_decode, item_id=_item_id)
    assert result.succeeded == ("0", "1")
    assert result.failed_ids == ["2", "3"]


def test_without_a_deadline_the_batch_never_stops() -> None:
    shop = Shop()
    records = [_record(str(i)) for i in range(50)]
    assert len(shop.batch(records, ctx=_ctx(timeout=None)).succeeded) == 50


def test_the_first_record_is_always_started() -> None:
    shop = Shop()
    clock = Clock()
    ctx = _ctx(clock, timeout=0.0)
    result = shop.batch([_record("1"), _record("2"), _record("3")], ctx=ctx)
    assert result.succeeded == ("1",)
    assert [(f.item_id, f.reason) for f in result.failed] == [("2", DEADLINE), ("3", DEADLINE)]


def test_an_ordered_failure_before_the_deadline_keeps_its_own_reason() -> None:
    clock = Clock()
    shop = Shop()
    ctx = _ctx(clock, timeout=0.5)
    result = shop.batch([_record("1", "boom"), _record("2")], ordered=True, ctx=ctx)
    assert [f.reason for f in result.failed] == ["handler failed", ORDER_BROKEN]


def test_the_async_batch_stops_near_the_deadline_too() -> None:
    clock = Clock()
    app = App("shop")

    @app.queue("orders")
    async def on_order(msg: Message) -> None:
        clock.now += 1.0

    ctx = _ctx(clock, timeout=2.5)
    records = [_record(str(i)) for i in range(4)]
    result = asyncio.run(
        app.handle_batch_async(Trigger.QUEUE, records, ctx, decode=_decode, item_id=_item_id)
    )
    assert result.succeeded == ("0", "1")
    assert [(f.item_id, f.reason) for f in result.failed] == [("2", DEADLINE), ("3", DEADLINE)]


def test_a_negative_batch_margin_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        App("shop", batch_deadline_margin=-0.1)


@pytest.mark.parametrize(
    ("timeout", "seconds", "expected"),
    [(None, 1e9, True), (5.0, 4.9, True), (5.0, 5.0, False), (0.0, 0.0, False), (1.0, 0.0, True)],
)
def test_has_time_for(timeout: float | None, seconds: float, expected: bool) -> None:
    assert _ctx(Clock(), timeout=timeout).has_time_for(seconds) is expected


# -- process_batch directly ------------------------------------------------------------


def test_process_batch_counts_set_aside_outcomes() -> None:
    def handle(name: str, event: object) -> object:
        assert isinstance(event, Message)
        return SET_ASIDE if event.id == "2" else None

    records = [_record("1"), _record("2"), _record("3")]
    result = process_batch(records, handle, _ctx(), decode=_decode, item_id=_item_id)
    assert result == BatchResult(("1", "3"), (), ("2",))


def test_process_batch_async_takes_a_deadline_margin() -> None:
    clock = Clock()

    async def handle(name: str, event: object) -> None:
        clock.now += 1.0

    records = [_record(str(i)) for i in range(7)]
    result = asyncio.run(
        process_batch_async(
            records, handle, _ctx(clock, timeout=4.5), decode=_decode, item_id=_item_id,
            deadline_margin=0.0,
        )
    )  # fmt: skip
    # With no margin the batch only stops once the deadline has passed.
    assert result.succeeded == ("0", "1", "2", "3", "4")
    assert result.failed_ids == ["5", "6"]


def test_an_unreadable_item_id_falls_back_to_the_index() -> None:
    def broken_id(record: Record) -> str:
        raise KeyError("messageId")

    result = process_batch(
        [_record("1", "boom")], lambda n, e: None, _ctx(), decode=_decode, item_id=broken_id
    )
    assert result.succeeded == ("0",)


def test_failures_leave_no_reference_cycles_behind(caplog: pytest.LogCaptureFixture) -> None:
    # A kept traceback would hold every frame down to the handler, and so the batch:
    # garbage for the cycle collector, holding the whole batch until it runs.
    import gc

    shop = Shop()
    records = [_record("1", "boom"), _record("2"), _record("3", "retry:5")]
    gc.collect()
    gc.disable()
    try:
        with caplog.at_level(logging.ERROR, logger="polyserve"):
            result = shop.batch(records)
        failed, error = result.failed_ids, result.failed[0].error
        kind, traceback = type(error), error.__traceback__ if error else None
        del result, error, traceback
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert failed == ["1", "3"]
    assert unreachable == 0
    assert kind is ValueError
    # Where it was raised went to the log.
    assert _log_records(caplog, logging.ERROR)[0]["error_message"] == "cannot handle 1"


# -- metadata read after the batch started -----------------------------------------


def _unreadable_decode(record: Record) -> tuple[str, object]:
    name, message = _decode(record)
    assert isinstance(message, Message)
    broken = record.get("unreadable", ())
    return name, unreadable(message, *broken) if broken else message


@pytest.mark.parametrize("broken", [("attempt",), ("attempt", "id")])
def test_a_failed_message_whose_count_cannot_be_read_fails_alone(
    broken: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    poison = Poison()
    shop = Shop(max_attempts=2, on_poison=poison)
    records = [
        _record("1"),
        {**_record("2", "boom", attempt=5), "unreadable": broken},
        {**_record("3", "boom", attempt=5), "unreadable": ("id",)},
        _record("4"),
    ]
    for run in (shop.app.handle_batch, shop.app.handle_batch_async):
        outcome = run(Trigger.QUEUE, records, _ctx(), decode=_unreadable_decode, item_id=_item_id)
        result = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
        assert result.succeeded == ("1", "4")
        assert result.failed_ids == ["2"]
        assert result.set_aside == ("3",)  # an unreadable id does not keep it from the hook
        # The handler's own error (it reads the id too, when that cannot be read).
        error = MalformedEventError if "id" in broken else ValueError
        assert type(result.failed[0].error) is error
    unread = [r for r in _log_records(caplog, logging.ERROR) if "unreadable" in r["message"]]
    assert [r["message"] for r in unread] == [
        "delivery count unreadable; the message stays failed"
    ] * 2
    assert unread[0]["error_type"] == "MalformedEventError"
    assert [event.attempt for event, _, _ in poison.calls] == [5, 5]


def test_a_single_message_whose_count_cannot_be_read_raises_the_handler_error() -> None:
    shop = Shop(max_attempts=2, on_poison=Poison())
    message = unreadable(Message("1", b"boom", attempt=5), "attempt")
    with pytest.raises(ValueError, match="cannot handle 1"):
        shop.app.handle_event(Trigger.QUEUE, "orders", message, _ctx())
    with pytest.raises(ValueError, match="cannot handle 1"):
        asyncio.run(shop.app.handle_event_async(Trigger.QUEUE, "orders", message, _ctx()))


# -- failure log lines ---------------------------------------------------------------

CARD = "4111 1111 1111 1111"


def _charge(order: dict[str, Any]) -> None:
    raise ValueError(f"payment declined for order {order['id']}")


def _payments() -> App:
    app = App("payments")

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        _charge(msg.json())

    return app


def _pay(app: App, *bodies: str) -> BatchResult:
    records = [_record(f"m{i}", body) for i, body in enumerate(bodies)]
    return app.handle_batch(Trigger.QUEUE, records, _ctx(), decode=_decode, item_id=_item_id)


def test_a_failed_record_is_one_line_naming_the_error_the_record_and_where_it_was_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    result = _pay(_payments(), json.dumps({"id": 7, "card": CARD}))
    assert result.failed_ids == ["m0"]
    [line] = [r.getMessage() for r in caplog.records]
    assert "\n" not in line
    logged = json.loads(line)
    assert logged["message"] == "record handler failed"
    assert logged["item_id"] == "m0"
    assert logged["error_type"] == "ValueError"
    assert logged["error_message"] == "payment declined for order 7"
    assert (logged["error_file"], logged["error_line"], logged["error_function"]) == (
        __file__, _charge.__code__.co_firstlineno + 1, "_charge",
    )  # fmt: skip
    assert "traceback" not in logged
    assert CARD not in caplog.text


def test_the_traceback_of_a_failed_record_is_logged_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="polyserve")
    _pay(_payments(), json.dumps({"id": 7, "card": CARD}))
    [logged] = _log_records(caplog, logging.ERROR)
    assert logged["traceback"].startswith("Traceback (most recent call last):")
    assert "in on_order" in logged["traceback"]
    assert "in _charge" in logged["traceback"]
    assert logged["traceback"].rstrip().endswith("ValueError: payment declined for order 7")
    assert logged["error_function"] == "_charge"
    assert CARD not in caplog.text


def test_a_record_that_is_not_json_is_logged_without_its_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="polyserve")
    result = _pay(_payments(), f"card={CARD}")
    assert result.failed_ids == ["m0"]
    [logged] = _log_records(caplog, logging.ERROR)
    assert logged["error_type"] == "MalformedEventError"
    assert logged["error_message"].startswith("message body is not valid JSON")
    assert CARD not in caplog.text


def test_failure_lines_stay_out_of_a_log_that_ignores_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, logger="polyserve")
    assert _pay(_payments(), json.dumps({"id": 7})).failed_ids == ["m0"]
    assert caplog.records == []


def test_a_failing_on_poison_hook_is_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    shop = Shop(max_attempts=2, on_poison=Poison(fails=True))
    assert shop.batch([_record("1", "boom", attempt=2)]).failed_ids == ["1"]
    [hook] = [
        r for r in _log_records(caplog, logging.ERROR) if r["message"].startswith("on_poison")
    ]
    assert (hook["message_id"], hook["error_type"], hook["error_message"]) == (
        "1", "OSError", "dead-letter queue unreachable",
    )  # fmt: skip
    assert hook["error_function"] == "__call__"
    assert "traceback" not in hook


def test_a_failure_stops_only_its_own_group() -> None:
    from polyserve.batch import run_batch
    from polyserve.pipeline import run

    # (id, group, fails); group None: a group that cannot be read.
    rows = [("1", "a", False), ("2", "a", True), ("3", "b", False), ("4", "a", False),
            ("5", "b", False), ("6", None, False), ("7", "c", False)]  # fmt: skip
    handled: list[str] = []

    async def handle(name: str, event: Any, record: Any) -> None:
        if record[2]:
            raise RuntimeError(record[0])
        handled.append(record[0])

    def group_of(record: Any) -> str:
        if record[1] is None:
            raise KeyError("MessageGroupId")
        return str(record[1])

    result = run(
        run_batch(
            rows, handle, Context("test"), decode=lambda r: ("q", r), item_id=lambda r: r[0],
            ordered=True, group_of=group_of,
        )
    )  # fmt: skip
    assert handled == ["1", "3", "5", "7"]
    assert [(f.item_id, f.reason) for f in result.failed] == [
        ("2", "handler failed"),
        ("4", "not processed: an earlier record of its group failed"),
        ("6", "not processed: an earlier record of its group failed"),  # may be group a
    ]
    # Without ordered, group_of changes nothing: every record is tried.
    handled.clear()
    run(run_batch(rows, handle, Context("test"), decode=lambda r: ("q", r),
                  item_id=lambda r: r[0], group_of=group_of))  # fmt: skip
    assert handled == ["1", "3", "4", "5", "6", "7"]
