from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import json
import threading
import time
from typing import Any

import pytest

from polyserve import (
    App,
    ChangeType,
    CloudEvent,
    ConfigurationError,
    Context,
    CorruptRecordError,
    InProgressError,
    KeyMissingError,
    Message,
    PayloadMismatchError,
    RecordTooLargeError,
    ScheduleEvent,
    StorageAction,
    StorageEvent,
    StoreUnavailableError,
    StreamRecord,
    Trigger,
)
from polyserve.idempotency import MemoryStore, Record, RedisStore, Status, idempotent
from polyserve_testkit.store_contract import FakeClock, namespaced


def _ctx(deadline: float | None = None) -> Context:
    return Context("test", invocation_id="inv-1", function_name="fn", deadline=deadline)


class SpyStore(MemoryStore):
    """A MemoryStore that records every call made to it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def acquire(self, key: str, **kwargs: Any) -> Record | None:
        self.calls.append(("acquire", {"key": key, **kwargs}))
        return super().acquire(key, **kwargs)

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        self.calls.append(("complete", {"key": key, "token": token}))
        return super().complete(key, token=token, result=result, expires_at=expires_at)

    def get(self, key: str) -> Record | None:
        self.calls.append(("get", {"key": key}))
        return super().get(key)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)


class DownStore:
    """A store whose backend cannot be reached."""

    max_result_bytes = 1024

    def acquire(self, key: str, **kwargs: Any) -> Record | None:
        raise StoreUnavailableError("backend down")

    def complete(self, key: str, *, token: str, result: bytes, expires_at: float) -> bool:
        raise StoreUnavailableError("backend down")

    def release(self, key: str, *, token: str) -> bool:
        raise StoreUnavailableError("backend down")

    def get(self, key: str) -> Record | None:
        raise StoreUnavailableError("backend down")

    def clear(self) -> None:
        raise StoreUnavailableError("backend down")


# -- default keys per event type ------------------------------------------------

WHEN = dt.datetime(2024, 5, 1, 3, 0, tzinfo=dt.timezone.utc)

EVENT_KEYS: list[tuple[Trigger, str, object, object, str]] = [
    (Trigger.QUEUE, "orders", Message("m-1", b"{}"), Message("m-2", b"{}"), "m-1"),
    (
        Trigger.CLOUDEVENT,
        "order.created",
        CloudEvent("c-1", "/shop", "order.created"),
        CloudEvent("c-1", "/other-shop", "order.created"),
        '["/shop","c-1"]',
    ),
    (
        Trigger.STORAGE,
        "uploads",
        StorageEvent("s-1", StorageAction.CREATED, "uploads", "a.txt", version="v1"),
        StorageEvent("s-1", StorageAction.CREATED, "uploads", "a.txt", version="v2"),
        '["uploads","a.txt","v1","created"]',
    ),
    (
        Trigger.STORAGE,
        "uploads",
        StorageEvent("s-1", StorageAction.CREATED, "uploads", "a.txt", etag="e1"),
        StorageEvent("s-2", StorageAction.CREATED, "uploads", "a.txt", etag="e2"),
        '["uploads","a.txt","e1","created"]',
    ),
    (
        Trigger.STORAGE,
        "uploads",
        StorageEvent("s-1", StorageAction.CREATED, "uploads", "a.txt"),
        StorageEvent("s-2", StorageAction.CREATED, "uploads", "a.txt"),
        '["uploads","a.txt","s-1","created"]',
    ),
    (
        Trigger.SCHEDULE,
        "nightly",
        ScheduleEvent("t-1", "nightly", scheduled_at=WHEN),
        ScheduleEvent("t-1", "nightly", scheduled_at=WHEN + dt.timedelta(days=1)),
        '["nightly","2024-05-01T03:00:00+00:00"]',
    ),
    (
        Trigger.STREAM,
        "users",
        StreamRecord("r-1", ChangeType.INSERT, "users", new={"id": 1}, sequence="100"),
        StreamRecord("r-1", ChangeType.INSERT, "users", new={"id": 1}, sequence="101"),
        '["users","100"]',
    ),
    (
        Trigger.STREAM,
        "users",
        StreamRecord("r-1", ChangeType.INSERT, "users", new={"id": 1}),
        StreamRecord("r-2", ChangeType.INSERT, "users", new={"id": 1}),
        '["users","r-1"]',
    ),
]


@pytest.mark.parametrize(("trigger", "name", "event", "other", "expected_key"), EVENT_KEYS)
def test_default_key_per_event_type(
    trigger: Trigger, name: str, event: object, other: object, expected_key: str
) -> None:
    app = App("keys")
    store = MemoryStore()
    seen: list[object] = []

    @idempotent(store)
    def handle(event: Any) -> str:
        seen.append(event)
        return f"handled {len(seen)}"

    app.register(trigger, name, handle)

    assert app.handle_event(trigger, name, event, _ctx()) == "handled 1"
    assert app.handle_event(trigger, name, event, _ctx()) == "handled 1"
    record = store.get(namespaced(handle, expected_key))
    assert record is not None
    assert record.status is Status.COMPLETED
    assert app.handle_event(trigger, name, other, _ctx()) == "handled 2"
    assert seen == [event, other]


def test_handler_taking_only_the_payload_still_gets_the_message_key() -> None:
    app = App("payload")
    store = MemoryStore()
    totals: list[int] = []

    @app.queue("orders")
    @idempotent(store)
    def on_order(order: dict[str, int]) -> None:
        totals.append(order["total"])

    message = Message("m-7", b'{"total": 30}')
    app.handle_event(Trigger.QUEUE, "orders", message, _ctx())
    app.handle_event(Trigger.QUEUE, "orders", message, _ctx())
    assert totals == [30]
    assert store.get(namespaced(on_order, "m-7")) is not None


def test_dotted_path_key_reads_the_json_payload() -> None:
    store = MemoryStore()
    runs: list[str] = []

    @idempotent(store, key="order.lines.0.sku")
    def handle(message: Message) -> None:
        runs.append(message.id)

    body = json.dumps({"order": {"lines": [{"sku": "A-1"}]}}).encode()
    handle(Message("first", body))
    handle(Message("redelivered-with-new-id", body))
    assert runs == ["first"]
    assert store.get(namespaced(handle, "A-1")) is not None


@pytest.mark.parametrize("body", [b'{"order": {}}', b"not json", b'{"order": {"lines": []}}'])
def test_dotted_path_missing_raises_key_missing(body: bytes) -> None:
    @idempotent(MemoryStore(), key="order.lines.0.sku")
    def handle(message: Message) -> None:
        raise AssertionError("must not run")

    with pytest.raises(KeyMissingError):
        handle(Message("m", body))


def test_on_missing_key_skip_runs_unprotected() -> None:
    store = MemoryStore()
    runs: list[str] = []

    @idempotent(store, key="order.id", on_missing_key="skip")
    def handle(message: Message) -> None:
        runs.append(message.id)

    handle(Message("a", b"{}"))
    handle(Message("a", b"{}"))
    assert runs == ["a", "a"]
    assert store.get(namespaced(handle, "a")) is None


def test_custom_key_callable_gets_the_event() -> None:
    store = MemoryStore()
    runs: list[str] = []

    @idempotent(store, key=lambda m: m.attributes["business-id"])
    def handle(message: Message) -> None:
        runs.append(message.id)

    handle(Message("1", attributes={"business-id": "B"}))
    handle(Message("2", attributes={"business-id": "B"}))
    handle(Message("3", attributes={"business-id": "C"}))
    assert runs == ["1", "3"]
    assert store.get(namespaced(handle, "B")) is not None


def test_keys_are_namespaced_by_function() -> None:
    store = MemoryStore()
    runs: list[str] = []

    @idempotent(store)
    def first(message: Message) -> None:
        runs.append("first")

    @idempotent(store)
    def second(message: Message) -> None:
        runs.append("second")

    message = Message("same-id")
    first(message)
    second(message)
    first(message)
    assert runs == ["first", "second"]
    assert namespaced(first, "same-id") != namespaced(second, "same-id")
    assert namespaced(first, "same-id").startswith(f"{__name__}.")


def test_long_keys_are_hashed() -> None:
    store = SpyStore()

    @idempotent(store)
    def handle(message: Message) -> None:
        return None

    handle(Message("x" * 1000))
    key = store.calls[0][1]["key"]
    assert key == namespaced(handle, key.split("#", 1)[1])
    assert key.split("#", 1)[1].startswith("sha256:")
    assert len(key.split("#", 1)[1]) == len("sha256:") + 64


# -- plain functions ------------------------------------------------------------


def test_plain_function_is_keyed_by_its_arguments() -> None:
    runs: list[tuple[int, str]] = []

    @idempotent()
    def transfer(amount: int, currency: str = "EUR") -> dict[str, Any]:
        runs.append((amount, currency))
        return {"amount": amount, "currency": currency}

    assert transfer(5) == {"amount": 5, "currency": "EUR"}
    assert transfer(amount=5) == {"amount": 5, "currency": "EUR"}
    assert transfer(5, "EUR") == {"amount": 5, "currency": "EUR"}
    assert transfer(5, "USD") == {"amount": 5, "currency": "USD"}
    assert runs == [(5, "EUR"), (5, "USD")]


def test_plain_function_keeps_name_doc_and_signature() -> None:
    @idempotent()
    def transfer(amount: int, *, note: str = "") -> int:
        """Move money."""
        return amount

    assert transfer.__name__ == "transfer"
    assert transfer.__doc__ == "Move money."
    assert not hasattr(transfer, "__wrapped__")
    params = inspect.signature(transfer).parameters
    assert list(params)[:2] == ["amount", "note"]
    assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in list(params)[1:])


def test_async_plain_function() -> None:
    runs: list[int] = []

    @idempotent()
    async def work(n: int) -> int:
        runs.append(n)
        await asyncio.sleep(0)
        return n * 2

    async def main() -> list[int]:
        return [await work(1), await work(1), await work(2)]

    assert inspect.iscoroutinefunction(work)
    assert asyncio.run(main()) == [2, 2, 4]
    assert runs == [1, 2]


def test_unhashable_arguments_need_an_explicit_key() -> None:
    @idempotent()
    def handle(lock: threading.Lock) -> None:
        raise AssertionError("must not run")

    with pytest.raises(KeyMissingError, match="pass key="):
        handle(threading.Lock())


def test_unhashable_arguments_can_run_unprotected() -> None:
    runs: list[int] = []

    @idempotent(on_missing_key="skip")
    def handle(lock: threading.Lock) -> None:
        runs.append(1)

    handle(threading.Lock())
    handle(threading.Lock())
    assert runs == [1, 1]


def test_key_function_returning_none_means_missing() -> None:
    @idempotent(MemoryStore(), key=lambda m: m.attributes.get("id"))
    def handle(message: Message) -> None:
        raise AssertionError("must not run")

    with pytest.raises(KeyMissingError):
        handle(Message("m"))


def test_arguments_of_model_types_are_hashed_by_value() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    runs: list[Point] = []

    @idempotent()
    def place(point: Point) -> None:
        runs.append(point)

    place(Point(1, 2))
    place(Point(1, 2))
    place(Point(2, 1))
    assert runs == [Point(1, 2), Point(2, 1)]


# -- failures, expiry, mismatch -------------------------------------------------


def test_exception_releases_the_key() -> None:
    store = MemoryStore()
    attempts: list[str] = []

    @idempotent(store)
    def handle(message: Message) -> str:
        attempts.append(message.id)
        if len(attempts) == 1:
            raise ValueError("transient")
        return "done"

    with pytest.raises(ValueError, match="transient"):
        handle(Message("m"))
    assert store.get(namespaced(handle, "m")) is None
    assert handle(Message("m")) == "done"
    assert handle(Message("m")) == "done"
    assert attempts == ["m", "m"]


def test_result_expires_after_ttl() -> None:
    clock = FakeClock()
    runs: list[str] = []

    @idempotent(MemoryStore(), ttl=60, clock=clock)
    def handle(message: Message) -> int:
        runs.append(message.id)
        return len(runs)

    assert handle(Message("m")) == 1
    clock.advance(59.9)
    assert handle(Message("m")) == 1
    clock.advance(0.2)
    assert handle(Message("m")) == 2


def test_payload_mismatch_on_same_key() -> None:
    @idempotent(MemoryStore())
    def handle(message: Message) -> None:
        return None

    handle(Message("m", b'{"amount": 1}'))
    handle(Message("m", b'{"amount": 1}'))
    with pytest.raises(PayloadMismatchError):
        handle(Message("m", b'{"amount": 2}'))


def test_payload_option_limits_the_fingerprint() -> None:
    runs: list[bytes] = []

    @idempotent(MemoryStore(), payload="amount")
    def handle(message: Message) -> None:
        runs.append(message.body)

    handle(Message("m", b'{"amount": 1, "trace": "a"}'))
    handle(Message("m", b'{"amount": 1, "trace": "b"}'))
    with pytest.raises(PayloadMismatchError):
        handle(Message("m", b'{"amount": 2, "trace": "a"}'))
    assert runs == [b'{"amount": 1, "trace": "a"}']


def test_lock_expires_at_the_invocation_deadline() -> None:
    store = SpyStore()
    clock = FakeClock()

    @idempotent(store, clock=clock, lock_timeout=60)
    def handle(message: Message, context: Context) -> None:
        return None

    handle(Message("with-deadline"), _ctx(deadline=time.time() + 20))
    handle(Message("without-deadline"), _ctx())
    with_deadline, without = (args for name, args in store.calls if name == "acquire")
    assert with_deadline["lock_expires_at"] - clock() == pytest.approx(20, abs=1)
    assert without["lock_expires_at"] - clock() == 60
    assert with_deadline["expires_at"] - clock() == 3600


def test_crashed_holder_is_taken_over_once_its_lock_expires() -> None:
    store = MemoryStore()
    clock = FakeClock()
    runs: list[str] = []

    @idempotent(store, clock=clock)
    def handle(message: Message) -> str:
        runs.append(message.id)
        return "ok"

    key = namespaced(handle, "m")
    now = clock()
    assert store.acquire(key, token="crashed", fingerprint=None, lock_expires_at=now + 30,
                         expires_at=now + 3600, now=now) is None  # fmt: skip
    with pytest.raises(InProgressError):
        handle(Message("m"))
    clock.advance(30)
    assert handle(Message("m")) == "ok"
    assert runs == ["m"]


def test_lost_lock_returns_the_result_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    clock = FakeClock()

    @idempotent(store, clock=clock, lock_timeout=1)
    def handle(message: Message) -> str:
        # The lock expires while the handler runs and another delivery takes the key.
        clock.advance(2)
        taken = store.acquire(namespaced(handle, "m"), token="other", fingerprint=None,
                              lock_expires_at=clock() + 10, expires_at=clock() + 10, now=clock())  # fmt: skip
        assert taken is None
        return "mine"

    with caplog.at_level("WARNING", logger="polyserve"):
        assert handle(Message("m")) == "mine"
    assert "result not stored" in caplog.text
    record = store.get(namespaced(handle, "m"))
    assert record is not None
    assert record.token == "other"


# -- results ----------------------------------------------------------------------


def test_too_large_result_raises_and_releases() -> None:
    store = MemoryStore(max_result_bytes=32)
    runs: list[str] = []

    @idempotent(store)
    def handle(message: Message) -> str:
        runs.append(message.id)
        return "x" * 100

    with pytest.raises(RecordTooLargeError, match="at most 32"):
        handle(Message("m"))
    assert store.get(namespaced(handle, "m")) is None
    with pytest.raises(RecordTooLargeError):
        handle(Message("m"))
    assert runs == ["m", "m"]


def test_unserialisable_result_raises_and_releases() -> None:
    store = MemoryStore()

    @idempotent(store)
    def handle(message: Message) -> object:
        return object()

    with pytest.raises(Exception, match="cannot store a result") as info:
        handle(Message("m"))
    assert getattr(info.value, "code", None) == "result_not_serializable"
    assert store.get(namespaced(handle, "m")) is None


def test_corrupt_record_is_reported_never_rerun() -> None:
    store = MemoryStore()
    runs: list[str] = []

    @idempotent(store)
    def handle(message: Message) -> str:
        runs.append(message.id)
        return "ok"

    key = namespaced(handle, "m")
    now = time.time()
    store.acquire(key, token="t", fingerprint=None, lock_expires_at=now + 60,
                  expires_at=now + 60, now=now)  # fmt: skip
    store.complete(key, token="t", result=b"\x00garbage", expires_at=now + 60)
    with pytest.raises(CorruptRecordError):
        handle(Message("m"))
    assert runs == []


def test_replay_returns_json_values_for_models() -> None:
    @dataclasses.dataclass
    class Receipt:
        id: int
        at: dt.datetime

    @idempotent()
    def handle(message: Message) -> Receipt:
        return Receipt(7, WHEN)

    assert handle(Message("m")) == Receipt(7, WHEN)
    replayed: Any = handle(Message("m"))
    assert replayed == {"id": 7, "at": "2024-05-01T03:00:00+00:00"}


# -- store failures -------------------------------------------------------------


def test_unavailable_store_never_runs_the_handler() -> None:
    runs: list[str] = []

    @idempotent(DownStore())
    def handle(message: Message) -> None:
        runs.append(message.id)

    with pytest.raises(StoreUnavailableError):
        handle(Message("m"))
    assert runs == []


def test_unavailable_store_fails_the_event_so_the_platform_retries() -> None:
    app = App("down")
    runs: list[str] = []

    @app.queue("orders")
    @idempotent(DownStore())
    def handle(message: Message) -> None:
        runs.append(message.id)

    with pytest.raises(StoreUnavailableError):
        app.handle_event(Trigger.QUEUE, "orders", Message("m"), _ctx())
    assert runs == []


def test_redis_store_on_a_closed_port_is_unavailable() -> None:
    runs: list[str] = []
    store = RedisStore("redis://127.0.0.1:1/0", socket_timeout=1.0)

    @idempotent(store)
    def handle(message: Message) -> None:
        runs.append(message.id)

    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        handle(Message("m"))
    assert time.monotonic() - started < 5
    assert runs == []
    store.close()


# -- waiting and the cache --------------------------------------------------------


def test_wait_returns_the_first_callers_result() -> None:
    store = MemoryStore()
    entered, release = threading.Event(), threading.Event()
    runs: list[str] = []

    @idempotent(store, wait=True)
    def handle(message: Message) -> str:
        runs.append(message.id)
        entered.set()
        assert release.wait(5)
        return "first"

    thread = threading.Thread(target=handle, args=(Message("m"),))
    thread.start()
    assert entered.wait(5)
    threading.Timer(0.1, release.set).start()
    assert handle(Message("m")) == "first"
    thread.join(5)
    assert runs == ["m"]


def test_wait_runs_the_handler_when_the_first_caller_fails() -> None:
    entered, release = threading.Event(), threading.Event()
    runs: list[str] = []

    @idempotent(MemoryStore(), wait=True)
    def handle(message: Message) -> str:
        runs.append(threading.current_thread().name)
        if len(runs) == 1:
            entered.set()
            assert release.wait(5)
            raise RuntimeError("first caller fails")
        return "second"

    def first() -> None:
        with pytest.raises(RuntimeError):
            handle(Message("m"))

    thread = threading.Thread(target=first, name="first")
    thread.start()
    assert entered.wait(5)
    threading.Timer(0.1, release.set).start()
    assert handle(Message("m")) == "second"
    thread.join(5)
    assert runs == ["first", threading.current_thread().name]


def test_wait_gives_up_before_the_deadline() -> None:
    entered, release = threading.Event(), threading.Event()

    @idempotent(MemoryStore(), wait=True)
    def handle(message: Message, context: Context) -> str:
        entered.set()
        assert release.wait(5)
        return "slow"

    thread = threading.Thread(target=handle, args=(Message("m"), _ctx()))
    thread.start()
    try:
        assert entered.wait(5)
        started = time.monotonic()
        with pytest.raises(InProgressError, match="gave up waiting"):
            handle(Message("m"), _ctx(deadline=time.time() + 0.3))
        assert 0.1 < time.monotonic() - started < 0.3
    finally:
        release.set()
        thread.join(5)


def test_async_wait_polls_without_blocking_the_loop() -> None:
    async def main() -> list[str]:
        gate = asyncio.Event()
        runs: list[str] = []

        @idempotent(MemoryStore(), wait=True)
        async def handle(message: Message) -> str:
            runs.append(message.id)
            await gate.wait()
            return "done"

        first = asyncio.ensure_future(handle(Message("m")))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(handle(Message("m")))
        await asyncio.sleep(0.05)
        gate.set()
        results = [await first, await second]
        assert runs == ["m"]
        return results

    assert asyncio.run(main()) == ["done", "done"]


def test_cache_serves_completed_records_and_never_in_progress() -> None:
    store = SpyStore()
    entered, release = threading.Event(), threading.Event()

    @idempotent(store, cache_size=2)
    def handle(message: Message) -> str:
        if message.id == "slow":
            entered.set()
            assert release.wait(5)
        return f"result {message.id}"

    assert handle(Message("a")) == "result a"
    assert handle(Message("a")) == "result a"
    assert store.count("acquire") == 1, "the repeat must come from the cache"

    thread = threading.Thread(target=handle, args=(Message("slow"),))
    thread.start()
    try:
        assert entered.wait(5)
        for attempt in range(2):
            with pytest.raises(InProgressError):
                handle(Message("slow"))
            assert store.count("acquire") == 3 + attempt, "in-progress records are not cached"
    finally:
        release.set()
        thread.join(5)
    assert handle(Message("slow")) == "result slow"
    assert store.count("acquire") == 4
    assert handle(Message("slow")) == "result slow"
    assert store.count("acquire") == 4


def test_cache_evicts_least_recently_used_and_expired() -> None:
    store = SpyStore()
    clock = FakeClock()

    @idempotent(store, cache_size=2, ttl=10, clock=clock)
    def handle(message: Message) -> str:
        return message.id

    for name in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
        handle(Message(name))
    assert store.count("acquire") == 3
    handle(Message("a"))
    handle(Message("c"))
    assert store.count("acquire") == 3
    handle(Message("b"))
    assert store.count("acquire") == 4
    clock.advance(11)
    handle(Message("a"))
    assert store.count("acquire") == 5, "an expired cache entry must not be served"


def test_cached_replay_still_checks_the_payload() -> None:
    @idempotent(MemoryStore(), cache_size=4)
    def handle(message: Message) -> None:
        return None

    handle(Message("m", b"one"))
    with pytest.raises(PayloadMismatchError):
        handle(Message("m", b"two"))


# -- configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "body"},
        {"mode": "header", "key": "order.id"},
        {"on_missing_key": "ignore"},
        {"ttl": 0},
        {"lock_timeout": -1},
        {"cache_size": -1},
        {"header": ""},
        {"key": ""},
        {"payload": 3},
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        idempotent(**options)


def test_reserved_parameter_names_are_refused() -> None:
    def handle(_idempotency_context: Context) -> None:
        return None

    with pytest.raises(ConfigurationError, match="_idempotency_context"):
        idempotent()(handle)


def test_a_payload_nested_past_the_stack_fails_its_record_with_a_typed_error() -> None:
    app = App("deep")
    store = MemoryStore()
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]

    @app.stream("users")
    @idempotent(store)
    def on_change(record: StreamRecord) -> None: ...

    records = [
        StreamRecord("r-1", ChangeType.INSERT, "users", new={"id": 1}, sequence="1"),
        StreamRecord("r-2", ChangeType.INSERT, "users", new={"deep": deep}, sequence="2"),
        StreamRecord("r-3", ChangeType.INSERT, "users", new={"id": 3}, sequence="3"),
    ]
    result = app.handle_batch(
        Trigger.STREAM, records, _ctx(), decode=lambda r: ("users", r), item_id=lambda r: r.id
    )
    assert result.succeeded == ("r-1", "r-3")
    [failure] = result.failed
    assert failure.item_id == "r-2"
    assert type(failure.error).__name__ == "MalformedEventError"
    assert "nested too deeply" in str(failure.error)


@pytest.mark.parametrize("left", [0.0, 0.2, -30.0])
def test_a_call_past_or_near_its_deadline_still_holds_the_key(left: float) -> None:
    # remaining_time() is 0 once the deadline has passed: a lock of 0 s would be dead
    # when written, and a concurrent caller would run the handler beside this one.
    store = MemoryStore()
    clock = FakeClock()
    started = []

    @idempotent(store, clock=clock, lock_timeout=60)
    def handle(message: Message, context: Context) -> None:
        started.append(message.id)
        with pytest.raises(InProgressError):
            handle(Message("m"), _ctx(deadline=time.time() + left))

    handle(Message("m"), _ctx(deadline=time.time() + left))
    assert started == ["m"]


def test_the_lock_floor_never_exceeds_lock_timeout() -> None:
    store = SpyStore()
    clock = FakeClock()

    @idempotent(store, clock=clock, lock_timeout=2)
    def handle(message: Message, context: Context) -> None:
        return None

    handle(Message("late"), _ctx(deadline=time.time() - 1))
    [late] = (args for name, args in store.calls if name == "acquire")
    assert late["lock_expires_at"] - clock() == 2
