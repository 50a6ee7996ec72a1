"""Checks every idempotency store must pass, written once and run against each store.

A store test module calls these with a *store factory*: a zero-argument callable that
returns a fresh client of the store under test. The process checks send the factory to
spawned worker processes, so there it must be picklable: a class, a module-level
function or a ``functools.partial`` of one, for example::

    factory = functools.partial(DynamoDBStore, table="idem", endpoint_url=server.url)
    report = check_exactly_once_across_processes(factory, n_procs=16, workdir=tmp_path)
    assert report.executions == 1

    TestLifecycle = make_lifecycle_machine(factory).TestCase

Executions are counted in an append-only file (one line per start of the handler body),
so the count survives the processes that wrote it, including a killed one. Every check
uses fresh random keys, so stores that share a table or prefix need no clearing.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import multiprocessing.context
import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from polyserve.errors import InProgressError, PayloadMismatchError
from polyserve.idempotency import Record, Status, Store, idempotent, is_live

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

    from hypothesis.stateful import RuleBasedStateMachine

__all__ = [
    "FakeClock",
    "RaceReport",
    "StoreContract",
    "StoreFactory",
    "check_crash_recovery",
    "check_exactly_once_across_processes",
    "check_exactly_once_across_threads",
    "check_exception_cleanup",
    "check_expiry",
    "check_mismatch",
    "check_single_takeover",
    "check_stale_owner",
    "make_lifecycle_machine",
    "namespaced",
]

StoreFactory = Callable[[], Store]

_JOIN_TIMEOUT = 60.0
_START_TIMEOUT = 30.0
# The modules the fork server was last asked to preload (None: not started by a check).
_forkserver_modules: list[str] | None = None


@dataclass(frozen=True, slots=True)
class RaceReport:
    """What a race on one key produced: how many callers, executions and answers of each kind."""

    callers: int
    executions: int
    results: int
    in_progress: int


def namespaced(fn: Callable[..., Any], key: str) -> str:
    """The key ``@idempotent`` stores for ``fn`` and the raw ``key``."""
    return f"{fn.__module__}.{fn.__qualname__}#{key}"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _append(log: Path, line: str) -> None:
    # O_APPEND makes each small write land whole at the end, whichever process writes it.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _counted_job(
    store: Store,
    log: Path,
    key: str,
    *,
    hold: float = 0.0,
    wait: bool = False,
    lock_timeout: float = 30.0,
    clock: Callable[[], float] = time.time,
) -> Callable[[int], dict[str, int]]:
    """An idempotent job on ``key`` that logs each start of its body, then holds the key."""

    @idempotent(
        store,
        key=lambda _: key,
        payload=lambda _: "same payload for every worker",
        wait=wait,
        lock_timeout=lock_timeout,
        clock=clock,
    )
    def job(worker: int) -> dict[str, int]:
        _append(log, str(worker))
        if hold:
            time.sleep(hold)
        return {"worker": worker}

    return job


def _outcome(job: Callable[[int], dict[str, int]], worker: int) -> dict[str, Any]:
    try:
        return {"status": "result", "result": job(worker)}
    except InProgressError:
        return {"status": "in_progress"}
    except Exception as exc:
        return {"status": "error", "error": repr(exc)}


def _processes(
    make_store: StoreFactory, preload: Sequence[str]
) -> multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext:
    """Fresh worker processes, started cheaply.

    A fork server is a clean process (no threads, no test state) that imports this module,
    the store's module and ``preload`` once, then forks each worker from itself; each
    worker still builds its own store client. Where there is no fork server, spawn.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    target = make_store.func if isinstance(make_store, functools.partial) else make_store
    modules = [__name__, getattr(target, "__module__", None) or __name__, *preload]
    modules = list(dict.fromkeys(modules))
    global _forkserver_modules
    if _forkserver_modules is not None and not set(modules) <= set(_forkserver_modules):
        # A running fork server keeps the modules it started with: one started for another
        # store would leave every worker to import this store's client library itself.
        # Stop it (it has no children left: the checks join theirs) so it restarts with these.
        from multiprocessing import forkserver

        stop = getattr(forkserver._forkserver, "_stop", None)
        if callable(stop):
            stop()
            _forkserver_modules = None
    if _forkserver_modules is None:
        context.set_forkserver_preload(modules)
        _forkserver_modules = modules
    return context


def _warm(store: Store) -> None:
    # Connect (and import the client library) before the race, so that the barrier
    # releases callers that are all ready to send their request.
    store.get(f"warm-up-{uuid.uuid4().hex}")


def _race_worker(
    make_store: StoreFactory,
    workdir: Path,
    key: str,
    worker: int,
    barrier: Barrier,
    wait: bool,
    hold: float,
) -> None:
    store = make_store()
    job = _counted_job(store, workdir / "executions", key, hold=hold, wait=wait)
    _warm(store)
    barrier.wait(_START_TIMEOUT)
    outcome = {**_outcome(job, worker), "pid": os.getpid()}
    (workdir / f"outcome-{worker}.json").write_text(json.dumps(outcome))
    _close(store)


def _close(store: Store) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


def _judge_race(
    workdir: Path, outcomes: list[dict[str, Any]], callers: int, *, wait: bool
) -> RaceReport:
    executions = _lines(workdir / "executions")
    assert len(executions) == 1, f"the body ran {len(executions)} times: {executions}"
    winner = {"worker": int(executions[0])}
    errors = [o for o in outcomes if o["status"] not in ("result", "in_progress")]
    assert not errors, f"unexpected outcomes: {errors}"
    results = [o["result"] for o in outcomes if o["status"] == "result"]
    assert all(r == winner for r in results), f"results differ from the winner's: {results}"
    assert winner in results, "the caller that ran the body did not get its result"
    in_progress = len(outcomes) - len(results)
    if wait:
        assert in_progress == 0, "with wait=True every caller should get the result"
    return RaceReport(callers, len(executions), len(results), in_progress)


def check_exactly_once_across_processes(
    make_store: StoreFactory,
    n_procs: int = 16,
    *,
    workdir: Path | None = None,
    wait: bool = False,
    hold: float = 0.3,
    preload: Sequence[str] = (),
) -> RaceReport:
    """``n_procs`` worker processes call one key at once: the body runs exactly once.

    Every process builds its own store client with ``make_store`` (which must be
    picklable), connects, waits at a barrier, then calls an idempotent job that logs its
    start and holds the key for ``hold`` seconds. Every caller must get the winner's
    result or ``InProgressError`` (only the result with ``wait=True``), and a later call
    must replay the stored result without running the body again. ``preload`` names
    modules the workers need (a client library such as ``"redis"`` or ``"boto3"``), so
    they are imported once rather than in every worker.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return check_exactly_once_across_processes(
                make_store, n_procs, workdir=Path(tmp), wait=wait, hold=hold, preload=preload
            )
    key = f"race-{uuid.uuid4().hex}"
    processes = _processes(make_store, preload)
    barrier = processes.Barrier(n_procs)
    procs = [
        processes.Process(
            target=_race_worker, args=(make_store, workdir, key, i, barrier, wait, hold)
        )
        for i in range(n_procs)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(_JOIN_TIMEOUT)
    stuck = [p.pid for p in procs if p.exitcode is None]
    for p in procs:
        if p.exitcode is None:
            p.kill()
            p.join()
    assert not stuck, f"workers {stuck} did not finish within {_JOIN_TIMEOUT} s"
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    outcomes = [json.loads((workdir / f"outcome-{i}.json").read_text()) for i in range(n_procs)]
    pids = {o["pid"] for o in outcomes}
    assert len(pids) == n_procs, "every caller must run in a process of its own"
    assert os.getpid() not in pids
    report = _judge_race(workdir, outcomes, n_procs, wait=wait)

    # Nothing lost: a later delivery gets the stored result and the body stays at one run.
    store = make_store()
    try:
        job = _counted_job(store, workdir / "executions", key)
        assert job(n_procs) == {"worker": int(_lines(workdir / "executions")[0])}
        assert len(_lines(workdir / "executions")) == 1
    finally:
        _close(store)
    return report


def check_exactly_once_across_threads(
    make_store: StoreFactory,
    n_threads: int = 16,
    *,
    workdir: Path,
    wait: bool = False,
    hold: float = 0.2,
) -> RaceReport:
    """As ``check_exactly_once_across_processes``, with threads sharing one store client.

    For stores that live in one process (``MemoryStore``), and as a check that a store
    client is safe to share between threads.
    """
    store = make_store()
    key = f"race-{uuid.uuid4().hex}"
    log = workdir / "executions"
    job = _counted_job(store, log, key, hold=hold, wait=wait)
    barrier = threading.Barrier(n_threads)
    outcomes: list[dict[str, Any]] = [{} for _ in range(n_threads)]

    def run(worker: int) -> None:
        barrier.wait(_START_TIMEOUT)
        outcomes[worker] = _outcome(job, worker)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(_JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "threads did not finish"
    report = _judge_race(workdir, outcomes, n_threads, wait=wait)
    assert job(n_threads) == {"worker": int(_lines(log)[0])}
    assert len(_lines(log)) == 1
    _close(store)
    return report


def _hanging_worker(make_store: StoreFactory, log: Path, key: str, lock_timeout: float) -> None:
    store = make_store()
    job = _counted_job(store, log, key, hold=3600.0, lock_timeout=lock_timeout)
    job(0)


def check_crash_recovery(
    make_store: StoreFactory,
    *,
    workdir: Path | None = None,
    lock_timeout: float = 5.0,
    preload: Sequence[str] = (),
) -> None:
    """A worker killed (SIGKILL) mid-flight leaves its lock; once it expires, a retry runs.

    While the dead worker's lock is live, a retry gets ``InProgressError``. The retry that
    comes after ``lock_timeout`` (simulated with a clock that far ahead, so the check does
    not sleep) takes the key, runs the body and stores the result, which later calls replay.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            check_crash_recovery(
                make_store, workdir=Path(tmp), lock_timeout=lock_timeout, preload=preload
            )
        return
    log = workdir / "executions"
    key = f"crash-{uuid.uuid4().hex}"
    worker = _processes(make_store, preload).Process(
        target=_hanging_worker, args=(make_store, log, key, lock_timeout)
    )
    worker.start()
    started = time.monotonic()
    try:
        while not _lines(log):
            assert worker.is_alive(), f"the worker exited early with code {worker.exitcode}"
            assert time.monotonic() - started < _START_TIMEOUT, "the worker never started"
            time.sleep(0.01)
    finally:
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(_JOIN_TIMEOUT)
    assert worker.exitcode == -signal.SIGKILL

    store = make_store()
    try:
        retry_now = _counted_job(store, log, key, lock_timeout=lock_timeout)
        with pytest.raises(InProgressError):
            retry_now(1)
        assert _lines(log) == ["0"]

        def later() -> float:
            return time.time() + lock_timeout + 1.0

        retry_later = _counted_job(store, log, key, lock_timeout=lock_timeout, clock=later)
        assert retry_later(2) == {"worker": 2}
        assert _lines(log) == ["0", "2"]
        record = store.get(namespaced(retry_later, key))
        assert record is not None
        assert record.status is Status.COMPLETED

        assert retry_now(3) == {"worker": 2}
        assert _lines(log) == ["0", "2"]
    finally:
        _close(store)


def check_expiry(make_store: StoreFactory) -> None:
    """Completed results replay until ``ttl`` has passed; an abandoned lock frees up after
    ``lock_expires_at``."""
    store = make_store()
    clock = FakeClock()
    key = f"expiry-{uuid.uuid4().hex}"
    runs: list[int] = []

    @idempotent(store, key=lambda _: key, ttl=10.0, lock_timeout=5.0, clock=clock)
    def job(n: int) -> int:
        runs.append(n)
        return n * 10

    try:
        assert job(1) == 10
        clock.advance(9.5)
        assert job(1) == 10
        assert runs == [1]
        clock.advance(1.0)
        assert job(1) == 10
        assert runs == [1, 1], "an expired result must not be replayed"

        # A lock left by a caller that died: live until lock_expires_at, then free.
        abandoned = f"abandoned-{uuid.uuid4().hex}"

        @idempotent(store, key=lambda _: abandoned, lock_timeout=5.0, clock=clock)
        def other(n: int) -> int:
            runs.append(n)
            return n

        now = clock()
        taken = store.acquire(
            namespaced(other, abandoned), token="dead-worker", fingerprint=None,
            lock_expires_at=now + 5.0, expires_at=now + 3600.0, now=now,
        )  # fmt: skip
        assert taken is None
        clock.advance(4.9)
        with pytest.raises(InProgressError):
            other(7)
        clock.advance(0.2)
        assert other(7) == 7
        assert runs == [1, 1, 7]
    finally:
        _close(store)


def check_mismatch(make_store: StoreFactory) -> None:
    """A key reused with another payload is refused, whether the first call is still
    running or completed; the same payload gets ``InProgressError`` or the result."""
    store = make_store()
    key = f"mismatch-{uuid.uuid4().hex}"
    entered = threading.Event()
    finish = threading.Event()

    @idempotent(store, key=lambda _: key)
    def charge(amount: int) -> dict[str, int]:
        entered.set()
        assert finish.wait(_START_TIMEOUT)
        return {"charged": amount}

    first: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: first.update(charge(5)))
    runner.start()
    try:
        assert entered.wait(_START_TIMEOUT)
        with pytest.raises(PayloadMismatchError):
            charge(6)
        with pytest.raises(InProgressError):
            charge(5)
    finally:
        finish.set()
        runner.join(_JOIN_TIMEOUT)
    try:
        assert first == {"charged": 5}
        assert charge(5) == {"charged": 5}
        with pytest.raises(PayloadMismatchError):
            charge(6)
    finally:
        _close(store)


def check_exception_cleanup(make_store: StoreFactory) -> None:
    """A handler that raises leaves no record behind, so the retry runs it again."""
    store = make_store()
    key = f"cleanup-{uuid.uuid4().hex}"
    attempts: list[int] = []

    @idempotent(store, key=lambda _: key)
    def flaky(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return n

    try:
        with pytest.raises(RuntimeError, match="first attempt fails"):
            flaky(3)
        assert store.get(namespaced(flaky, key)) is None
        assert flaky(3) == 3
        assert flaky(3) == 3
        assert attempts == [3, 3]
    finally:
        _close(store)


def _same(got: Record | None, want: Record) -> bool:
    if got is None:
        return False
    return (
        got.key == want.key
        and got.status is want.status
        and got.token == want.token
        and got.fingerprint == want.fingerprint
        and math.isclose(got.lock_expires_at, want.lock_expires_at, abs_tol=1e-6)
        and math.isclose(got.expires_at, want.expires_at, abs_tol=1e-6)
        and (got.result or b"") == (want.result or b"")
    )


def make_lifecycle_machine(make_store: StoreFactory) -> type[RuleBasedStateMachine]:
    """A Hypothesis state machine that drives a store and checks it against a model.

    The model is a dict of records and a clock. Rules acquire, complete, release and get
    keys with current, stale and foreign tokens, and move the clock. A store may clean up
    records that are no longer live at any time, and the model accepts that. Use::

        TestLifecycle = make_lifecycle_machine(factory).TestCase
        TestLifecycle.settings = hypothesis.settings(max_examples=25, deadline=None)
    """
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, rule

    keys = st.sampled_from(["a", "b"])
    durations = st.sampled_from([0.5, 1.0, 2.5, 10.0])

    class StoreLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store = make_store()
            self.prefix = f"lifecycle-{uuid.uuid4().hex}#"
            self.now = 1_000_000.0
            self.model: dict[str, Record] = {}
            self.tokens: list[str] = []

        def _token(self, pick: int) -> str:
            return self.tokens[-1 - pick] if pick < len(self.tokens) else "foreign-token"

        @rule(
            k=keys, fingerprint=st.sampled_from([None, "fp-1", "fp-2"]), lock=durations,
            ttl=durations,
        )  # fmt: skip
        def acquire(self, k: str, fingerprint: str | None, lock: float, ttl: float) -> None:
            key = self.prefix + k
            token = uuid.uuid4().hex
            got = self.store.acquire(
                key, token=token, fingerprint=fingerprint, lock_expires_at=self.now + lock,
                expires_at=self.now + ttl, now=self.now,
            )  # fmt: skip
            current = self.model.get(key)
            if current is not None and is_live(current, self.now):
                assert _same(got, current), f"acquire returned {got}, model holds {current}"
            else:
                assert got is None, f"acquire of a free key returned {got}"
                self.model[key] = Record(
                    key, Status.IN_PROGRESS, token, fingerprint, self.now + lock,
                    self.now + ttl,
                )  # fmt: skip
                self.tokens.append(token)

        @rule(k=keys, pick=st.integers(0, 4), result=st.binary(max_size=24), ttl=durations)
        def complete(self, k: str, pick: int, result: bytes, ttl: float) -> None:
            key = self.prefix + k
            token = self._token(pick)
            ok = self.store.complete(key, token=token, result=result, expires_at=self.now + ttl)
            current = self.model.get(key)
            owned = (
                current is not None
                and current.status is Status.IN_PROGRESS
                and current.token == token
            )
            if not owned:
                assert not ok, "complete succeeded with a token that does not own the key"
                return
            assert current is not None
            if is_live(current, self.now):
                assert ok, "complete failed although the token owns a live lock"
            if ok:
                self.model[key] = replace(
                    current, status=Status.COMPLETED, result=result, expires_at=self.now + ttl
                )
            else:  # the store had cleaned up the dead lock
                del self.model[key]

        @rule(k=keys, pick=st.integers(0, 4))
        def release(self, k: str, pick: int) -> None:
            key = self.prefix + k
            token = self._token(pick)
            ok = self.store.release(key, token=token)
            current = self.model.get(key)
            owned = (
                current is not None
                and current.status is Status.IN_PROGRESS
                and current.token == token
            )
            if not owned:
                assert not ok, "release succeeded with a token that does not own the key"
                return
            assert current is not None
            if is_live(current, self.now):
                assert ok, "release failed although the token owns a live lock"
            del self.model[key]

        @rule(k=keys)
        def get(self, k: str) -> None:
            key = self.prefix + k
            got = self.store.get(key)
            current = self.model.get(key)
            if current is None:
                assert got is None, f"get found {got} for a key the model does not hold"
            elif is_live(current, self.now):
                assert _same(got, current), f"get returned {got}, model holds {current}"
            elif got is None:
                del self.model[key]  # cleaned up, which a store may do with dead records
            else:
                assert _same(got, current), f"get returned {got}, model holds {current}"

        @rule(seconds=st.sampled_from([0.25, 1.0, 3.0, 12.0]))
        def advance(self, seconds: float) -> None:
            self.now += seconds

        def teardown(self) -> None:
            _close(self.store)

    return StoreLifecycle


_NOW = 1_700_000_000.0
_LIVE = {"lock_expires_at": _NOW + 30, "expires_at": _NOW + 600, "now": _NOW}
_AFTER_LOCK = {"lock_expires_at": _NOW + 90, "expires_at": _NOW + 600, "now": _NOW + 60}


def check_single_takeover(make_store: StoreFactory, callers: int = 8) -> None:
    """Callers racing to take over one dead IN_PROGRESS record: exactly one wins.

    The callers' clock (``_NOW``, late 2023) is years behind the wall clock, on purpose: a
    store whose backend cleanup went by the callers' times (a DynamoDB TTL attribute
    written from them) would let the backend delete the winner's live record mid-race,
    and a later caller would win too.
    """
    from concurrent.futures import ThreadPoolExecutor

    key = f"takeover-{uuid.uuid4().hex}"
    stores = [make_store() for _ in range(callers)]
    try:
        assert stores[0].acquire(key, token="dead", fingerprint=None, **_LIVE) is None

        def take(index: int) -> Record | None:
            return stores[index].acquire(
                key, token=f"caller-{index}", fingerprint=None, **_AFTER_LOCK
            )

        with ThreadPoolExecutor(callers) as pool:
            answers = list(pool.map(take, range(callers)))
        winners = [i for i, answer in enumerate(answers) if answer is None]
        assert len(winners) == 1, answers
        stored = stores[0].get(key)
        assert stored is not None
        assert stored.token == f"caller-{winners[0]}"
        assert all(answer == stored for answer in answers if answer is not None)
    finally:
        for store in stores:
            _close(store)


def check_stale_owner(make_store: StoreFactory) -> None:
    """An owner whose lock expired and was taken over can neither complete nor release."""
    first, second = make_store(), make_store()
    key = f"stale-{uuid.uuid4().hex}"
    try:
        assert first.acquire(key, token="a", fingerprint=None, **_LIVE) is None
        assert second.acquire(key, token="b", fingerprint="fp", **_AFTER_LOCK) is None
        assert not first.complete(key, token="a", result=b"late", expires_at=_NOW + 600)
        assert not first.release(key, token="a")
        assert second.complete(key, token="b", result=b"on time", expires_at=_NOW + 600)
        stored = first.get(key)
        assert stored is not None
        assert (stored.status, stored.token, stored.result) == (
            Status.COMPLETED, "b", b"on time",
        )  # fmt: skip
    finally:
        _close(first)
        _close(second)


class StoreContract:
    """The contract as test methods: subclass it in a store's test module and give it a
    ``make_store`` fixture returning a picklable store factory::

        @pytest.mark.integration
        class TestDynamoDBStoreContract(StoreContract):
            @pytest.fixture
            def make_store(self, dynamodb_factory: DynamoDBStoreFactory) -> StoreFactory:
                return dynamodb_factory
    """

    processes = 16
    lifecycle_examples = 15
    lifecycle_steps = 10
    # Modules the worker processes need (the store's client library): the fork server
    # imports them once, rather than every worker on its own.
    preload: tuple[str, ...] = ()

    def test_one_of_many_processes_runs_the_handler(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        report = check_exactly_once_across_processes(
            make_store, n_procs=self.processes, workdir=tmp_path, preload=self.preload
        )
        assert (report.callers, report.executions) == (self.processes, 1)
        assert report.results + report.in_progress == self.processes

    def test_killed_worker_is_retried_after_its_lock_expires(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        check_crash_recovery(make_store, workdir=tmp_path, preload=self.preload)

    def test_results_and_locks_expire(self, make_store: StoreFactory) -> None:
        check_expiry(make_store)

    def test_reused_key_with_another_payload_is_refused(self, make_store: StoreFactory) -> None:
        check_mismatch(make_store)

    def test_raising_handler_leaves_no_record(self, make_store: StoreFactory) -> None:
        check_exception_cleanup(make_store)

    def test_one_caller_takes_over_a_dead_record(self, make_store: StoreFactory) -> None:
        check_single_takeover(make_store)

    def test_stale_owner_cannot_complete_or_release(self, make_store: StoreFactory) -> None:
        check_stale_owner(make_store)

    def test_store_follows_the_record_lifecycle_model(self, make_store: StoreFactory) -> None:
        from hypothesis import HealthCheck, settings
        from hypothesis.stateful import run_state_machine_as_test

        run_state_machine_as_test(
            make_lifecycle_machine(make_store),
            settings=settings(
                max_examples=self.lifecycle_examples,
                stateful_step_count=self.lifecycle_steps,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
