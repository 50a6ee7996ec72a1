"""FirestoreStore's document fields, and the store's set-up, without a server."""

from __future__ import annotations

import datetime
import subprocess
import sys
from typing import Any

import pytest

from polyserve.errors import ConfigurationError, CorruptRecordError
from polyserve.idempotency.store import Record, Status
from polyserve_gcp.idempotency import DOCUMENT_SIZE_LIMIT, FirestoreStore, _encode_record

NOW = 1_700_000_000.5

# Encoding and decoding need no client, so the store never connects.
STORE = FirestoreStore("idempotency", project="p")

RECORDS = [
    Record("f#k", Status.IN_PROGRESS, "t1", None, NOW + 30, NOW + 600, None),
    Record("mod.f#a/b?c", Status.IN_PROGRESS, "t2", "fp", NOW + 0.125, NOW, None),
    Record("f#k", Status.COMPLETED, "t3", "fp", NOW, NOW + 3600, b'{"ok": true}'),
    Record("f#\u00e9\U0001f600", Status.COMPLETED, "t4", None, NOW, NOW + 1, b""),
    Record("f#k", Status.COMPLETED, "t5", None, 0.0, 1e-3, bytes(range(256))),
]


@pytest.mark.parametrize("record", RECORDS)
def test_encoded_record_decodes_to_itself(record: Record) -> None:
    assert STORE._decode(_encode_record(record, "expire_at")) == record


def test_encoding_uses_firestore_types_and_a_ttl_timestamp() -> None:
    record = Record("f#k", Status.COMPLETED, "t", None, NOW + 30, NOW + 600, b"42")

    assert _encode_record(record, "expire_at") == {
        "key": "f#k",
        "status": "completed",
        "token": "t",
        "fingerprint": None,
        "lock_expires_at": NOW + 30,
        "expires_at": NOW + 600,
        "result": b"42",
        "ttl_offset": 0,
        "expire_at": datetime.datetime(2023, 11, 14, 22, 23, 21, tzinfo=datetime.timezone.utc),
    }


def test_ttl_timestamp_is_moved_to_this_hosts_clock() -> None:
    # The caller's clock is 300 s behind this host's: TTL must wait 300 s longer.
    record = Record("f#k", Status.IN_PROGRESS, "t", None, NOW + 30, NOW + 600, None)

    encoded = _encode_record(record, "expire_at", 300)

    assert encoded["ttl_offset"] == 300
    assert encoded["expire_at"].timestamp() == 1_700_000_601 + 300


def test_ttl_timestamp_covers_the_lock_and_is_optional() -> None:
    record = Record("f#k", Status.IN_PROGRESS, "t", None, NOW + 900, NOW + 60, None)

    encoded = _encode_record(record, "gone_at")

    assert encoded["gone_at"].timestamp() == 1_700_000_901
    assert "result" not in encoded
    assert "expire_at" not in _encode_record(record, None)
    assert "ttl_offset" not in _encode_record(record, None)


def test_ttl_timestamp_is_capped_at_firestores_latest() -> None:
    record = Record("f#k", Status.IN_PROGRESS, "t", None, 1e15, 1e15, None)

    encoded = _encode_record(record, "expire_at")

    assert encoded["expire_at"].year == 9999


def test_non_finite_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        STORE.acquire(
            "f#k",
            token="t",
            fingerprint=None,
            lock_expires_at=float("nan"),
            expires_at=NOW,
            now=NOW,
        )
    with pytest.raises(ValueError, match="finite"):
        STORE.complete("f#k", token="t", result=b"", expires_at=float("inf"))


def fields(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": "f#k",
        "status": "completed",
        "token": "t",
        "fingerprint": "fp",
        "lock_expires_at": NOW,
        "expires_at": NOW + 60,
        "result": b"42",
    }
    for name, value in changes.items():
        if value is ...:
            del data[name]
        else:
            data[name] = value
    return data


def test_integer_times_are_accepted() -> None:
    record = STORE._decode(fields(lock_expires_at=1, expires_at=2))

    assert (record.lock_expires_at, record.expires_at) == (1.0, 2.0)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        fields(status=...),
        fields(status="done"),
        fields(status=1),
        fields(key=...),
        fields(key=b"f#k"),
        fields(token=None),
        fields(fingerprint=12),
        fields(lock_expires_at="soon"),
        fields(expires_at=True),
        fields(expires_at=...),
        fields(result=...),
        fields(result="42"),
    ],
)
def test_unreadable_fields_raise_corrupt_record(data: dict[str, Any] | None) -> None:
    with pytest.raises(CorruptRecordError):
        STORE._decode(data)


@pytest.mark.parametrize(
    "options",
    [
        {"max_result_bytes": DOCUMENT_SIZE_LIMIT},
        {"max_result_bytes": -1},
        {"ttl_field": "status"},
        {"ttl_field": "ttl_offset"},
    ],
)
def test_invalid_options_raise_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        FirestoreStore("idempotency", **options)


@pytest.mark.parametrize("collection", ["", "a/b/c"])
def test_collection_must_be_top_level(collection: str) -> None:
    with pytest.raises(ConfigurationError):
        FirestoreStore(collection)


def test_importing_the_store_does_not_import_google_cloud() -> None:
    code = (
        "import sys, polyserve_gcp, polyserve_gcp.idempotency\n"
        "from polyserve_gcp.idempotency import FirestoreStore\n"
        "FirestoreStore('idempotency', project='p')\n"
        "loaded = [m for m in ('google.cloud.firestore', 'google.api_core', 'grpc')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
