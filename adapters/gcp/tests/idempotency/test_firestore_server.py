"""FirestoreStore against the Firestore emulator: the store contract and the error paths.

The emulator comes with the gcloud SDK and is used where it is installed; elsewhere, CI
included, these tests are skipped (see conftest.py).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from tests.support.store_contract import (
    check_crash_recovery,
    check_exactly_once_across_processes,
    check_exception_cleanup,
    check_expiry,
    check_mismatch,
    make_lifecycle_machine,
)

from polyserve.errors import CorruptRecordError, RecordTooLargeError, StoreUnavailableError
from polyserve.idempotency.store import Record, Status
from polyserve_gcp.idempotency import DOCUMENT_SIZE_LIMIT, FirestoreStore

if TYPE_CHECKING:
    from pathlib import Path

    from adapters.gcp.tests.idempotency.factories import (
        ClosingFirestoreStore,
        FirestoreStoreFactory,
    )

NOW = 1_700_000_000.0
TIMES = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}

integration = pytest.mark.integration


@integration
def test_one_of_sixteen_processes_runs_the_handler(
    firestore_factory: FirestoreStoreFactory, tmp_path: Path
) -> None:
    report = check_exactly_once_across_processes(firestore_factory, n_procs=16, workdir=tmp_path)

    assert (report.callers, report.executions) == (16, 1)
    assert report.results + report.in_progress == 16


@integration
def test_killed_worker_is_retried_after_its_lock_expires(
    firestore_factory: FirestoreStoreFactory, tmp_path: Path
) -> None:
    check_crash_recovery(firestore_factory, workdir=tmp_path)


@integration
def test_results_and_locks_expire(firestore_factory: FirestoreStoreFactory) -> None:
    check_expiry(firestore_factory)


@integration
def test_reused_key_with_another_payload_is_refused(
    firestore_factory: FirestoreStoreFactory,
) -> None:
    check_mismatch(firestore_factory)


@integration
def test_raising_handler_leaves_no_record(firestore_factory: FirestoreStoreFactory) -> None:
    check_exception_cleanup(firestore_factory)


@integration
def test_store_follows_the_record_lifecycle_model(
    firestore_factory: FirestoreStoreFactory,
) -> None:
    run_state_machine_as_test(
        make_lifecycle_machine(firestore_factory),
        settings=settings(
            max_examples=15,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@integration
def test_one_caller_takes_over_a_dead_record(firestore_factory: FirestoreStoreFactory) -> None:
    key = f"takeover-{uuid.uuid4().hex}"
    stores = [firestore_factory() for _ in range(8)]
    try:
        assert stores[0].acquire(key, token="dead", fingerprint=None, **TIMES) is None
        after_lock = {"lock_expires_at": NOW + 90, "expires_at": NOW + 600, "now": NOW + 60}

        def take(index: int) -> Record | None:
            token = f"caller-{index}"
            return stores[index].acquire(key, token=token, fingerprint=None, **after_lock)

        with ThreadPoolExecutor(len(stores)) as pool:
            answers = list(pool.map(take, range(len(stores))))

        winners = [i for i, answer in enumerate(answers) if answer is None]
        assert len(winners) == 1, answers
        stored = stores[0].get(key)
        assert stored is not None
        assert stored.token == f"caller-{winners[0]}"
        assert all(answer == stored for answer in answers if answer is not None)
    finally:
        for store in stores:
            store.close()


@integration
def test_stale_owner_cannot_complete_or_release(firestore_factory: FirestoreStoreFactory) -> None:
    store = firestore_factory()
    key = f"stale-{uuid.uuid4().hex}"
    try:
        assert store.acquire(key, token="a", fingerprint=None, **TIMES) is None
        after_lock = {"lock_expires_at": NOW + 60, "expires_at": NOW + 600, "now": NOW + 31}
        assert store.acquire(key, token="b", fingerprint="fp", **after_lock) is None

        assert not store.complete(key, token="a", result=b"late", expires_at=NOW + 600)
        assert not store.release(key, token="a")
        assert store.complete(key, token="b", result=b"on time", expires_at=NOW + 600)
        assert store.get(key) == Record(
            key, Status.COMPLETED, "b", "fp", NOW + 60, NOW + 600, b"on time"
        )
    finally:
        store.close()


@integration
def test_documents_carry_a_ttl_timestamp(firestore_store: ClosingFirestoreStore) -> None:
    key = f"ttl-{uuid.uuid4().hex}"
    assert firestore_store.acquire(key, token="t", fingerprint=None, **TIMES) is None
    assert firestore_store.complete(key, token="t", result=b"42", expires_at=NOW + 3600)

    document = firestore_store.client.collection(firestore_store.collection).document(
        hashlib.sha256(key.encode()).hexdigest()
    )
    fields = document.get().to_dict()

    assert fields["key"] == key
    assert fields["expire_at"] == datetime.datetime.fromtimestamp(
        NOW + 3600, tz=datetime.timezone.utc
    )


@integration
def test_largest_result_fits(firestore_store: ClosingFirestoreStore) -> None:
    key = f"large-{uuid.uuid4().hex}"
    result = os.urandom(firestore_store.max_result_bytes)
    assert firestore_store.acquire(key, token="t", fingerprint="f" * 64, **TIMES) is None

    assert firestore_store.complete(key, token="t", result=result, expires_at=NOW + 600)

    stored = firestore_store.get(key)
    assert stored is not None
    assert stored.result == result


@integration
@pytest.mark.parametrize(
    "size",
    [DOCUMENT_SIZE_LIMIT - 100, DOCUMENT_SIZE_LIMIT],
    ids=["document-too-large", "value-too-large"],
)
def test_result_over_the_document_limit_raises_record_too_large(
    firestore_store: ClosingFirestoreStore, size: int
) -> None:
    key = f"too-large-{uuid.uuid4().hex}"
    assert firestore_store.acquire(key, token="t", fingerprint=None, **TIMES) is None

    with pytest.raises(RecordTooLargeError):
        firestore_store.complete(key, token="t", result=bytes(size), expires_at=NOW + 600)

    stored = firestore_store.get(key)
    assert stored is not None
    assert stored.status is Status.IN_PROGRESS


@integration
@pytest.mark.parametrize(
    "changes",
    [{"status": "exploded"}, {"status": 1}, {"token": 7}, {"expires_at": "tomorrow"}, {"key": "x"}],
)
def test_corrupted_document_raises_corrupt_record(
    firestore_store: ClosingFirestoreStore, changes: dict[str, Any]
) -> None:
    key = f"corrupt-{uuid.uuid4().hex}"
    fields = {
        "key": key,
        "status": "completed",
        "token": "t",
        "fingerprint": None,
        "lock_expires_at": NOW,
        "expires_at": NOW + 600,
        "result": b"42",
        **changes,
    }
    collection = firestore_store.client.collection(firestore_store.collection)
    collection.document(hashlib.sha256(key.encode()).hexdigest()).create(fields)

    with pytest.raises(CorruptRecordError):
        firestore_store.get(key)
    with pytest.raises(CorruptRecordError):
        firestore_store.acquire(
            key, token="u", fingerprint=None, lock_expires_at=NOW + 1, expires_at=NOW + 2, now=NOW
        )


@integration
def test_clear_removes_every_record(firestore_store: ClosingFirestoreStore) -> None:
    keys = [f"clear-{i}-{uuid.uuid4().hex}" for i in range(3)]
    for key in keys:
        assert firestore_store.acquire(key, token="t", fingerprint=None, **TIMES) is None

    firestore_store.clear()

    assert [firestore_store.get(key) for key in keys] == [None, None, None]


def test_closed_port_raises_store_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The store makes its own client, which the variable points at the closed port.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    store = FirestoreStore("idempotency", project="polyserve-test", timeout=1.0)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            store.acquire("f#k", token="t", fingerprint=None, **TIMES)
        with pytest.raises(StoreUnavailableError):
            store.complete("f#k", token="t", result=b"", expires_at=NOW)
    finally:
        store.close()

    assert caught.value.code == "store_unavailable"
    assert caught.value.status == 503
