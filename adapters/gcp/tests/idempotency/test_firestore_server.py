"""FirestoreStore against the Firestore emulator: the store contract and the error paths.

The emulator comes with the gcloud SDK and is used where it is installed; elsewhere, CI
included, these tests are skipped (see conftest.py).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from polyserve.errors import CorruptRecordError, RecordTooLargeError, StoreUnavailableError
from polyserve.idempotency.store import Status
from polyserve_gcp.idempotency import DOCUMENT_SIZE_LIMIT, FirestoreStore
from polyserve_testkit.store_contract import StoreContract, StoreFactory

if TYPE_CHECKING:
    from adapters.gcp.tests.idempotency.factories import (
        ClosingFirestoreStore,
        FirestoreStoreFactory,
    )

# The callers' clock in these tests: fixed, and years behind the emulator's clock.
NOW = 1_700_000_000.0
TIMES = {"lock_expires_at": NOW + 30, "expires_at": NOW + 600, "now": NOW}

integration = pytest.mark.integration


@integration
class TestFirestoreStoreContract(StoreContract):
    """The shared store contract, against the real server."""

    preload = ("google.cloud.firestore",)

    @pytest.fixture
    def make_store(self, firestore_factory: FirestoreStoreFactory) -> StoreFactory:
        return firestore_factory


@integration
def test_documents_carry_a_ttl_timestamp(firestore_store: ClosingFirestoreStore) -> None:
    # Firestore's TTL goes by Google's clock; the callers' clock here is years behind it.
    # A timestamp taken from the callers' times would be long past, and TTL could delete a
    # record still live for them, so it is their remaining life from now on this clock.
    key = f"ttl-{uuid.uuid4().hex}"
    document = firestore_store.client.collection(firestore_store.collection).document(
        hashlib.sha256(key.encode()).hexdigest()
    )
    before = time.time()
    assert firestore_store.acquire(key, token="t", fingerprint=None, **TIMES) is None
    fields = document.get().to_dict()
    assert before + 600 <= fields["expire_at"].timestamp() <= time.time() + 600 + 2

    before = time.time()
    assert firestore_store.complete(key, token="t", result=b"42", expires_at=NOW + 3600)
    fields = document.get().to_dict()

    assert fields["key"] == key
    assert before + 3600 - 2 <= fields["expire_at"].timestamp() <= time.time() + 3600 + 2


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
    ("size", "refused_by_server"),
    [
        (DOCUMENT_SIZE_LIMIT - 100, True),
        (DOCUMENT_SIZE_LIMIT - 1, True),
        (DOCUMENT_SIZE_LIMIT, False),
    ],
    ids=["document-too-large", "value-too-large", "result-over-the-document-limit"],
)
def test_result_over_the_document_limit_raises_record_too_large(
    firestore_store: ClosingFirestoreStore, size: int, refused_by_server: bool
) -> None:
    key = f"too-large-{uuid.uuid4().hex}"
    assert firestore_store.acquire(key, token="t", fingerprint=None, **TIMES) is None

    with pytest.raises(RecordTooLargeError) as caught:
        firestore_store.complete(key, token="t", result=bytes(size), expires_at=NOW + 600)

    # A result that cannot fit even alone is refused without a request; the server's own
    # refusal arrives chained to the error.
    assert (caught.value.__cause__ is not None) is refused_by_server

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
