"""TableStore's entity decoding and set-up, without a server."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from polyserve.errors import ConfigurationError, CorruptRecordError
from polyserve.idempotency.store import Record, Status
from polyserve_azure.idempotency import CHUNK_BYTES, TableStore

NOW = 1_700_000_000.5

# Decoding needs no client, so the store never connects.
STORE = TableStore("idempotency", endpoint="https://example.table.core.windows.net")


def entity(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "PartitionKey": "0" * 64,
        "RowKey": "record",
        "Key": "f#k",
        "Status": "completed",
        "Token": "t",
        "Fingerprint": "fp",
        "LockExpiresAt": NOW,
        "ExpiresAt": NOW + 60,
        "ResultParts": 2,
        "Result0": b"4",
        "Result1": b"2",
    }
    for name, value in changes.items():
        if value is ...:
            del data[name]
        else:
            data[name] = value
    return data


def test_completed_entity_joins_its_result_chunks() -> None:
    assert STORE._decode(entity()) == Record(
        "f#k", Status.COMPLETED, "t", "fp", NOW, NOW + 60, b"42"
    )


def test_in_progress_entity_has_no_result_and_may_lack_a_fingerprint() -> None:
    data = entity(Status="in_progress", Fingerprint=..., ResultParts=..., Result0=..., Result1=...)

    assert STORE._decode(data) == Record("f#k", Status.IN_PROGRESS, "t", None, NOW, NOW + 60, None)


def test_completed_entity_with_no_chunks_has_an_empty_result() -> None:
    record = STORE._decode(entity(ResultParts=0, Result0=..., Result1=...))

    assert record.result == b""


def test_integer_times_are_accepted() -> None:
    record = STORE._decode(entity(LockExpiresAt=1, ExpiresAt=2))

    assert (record.lock_expires_at, record.expires_at) == (1.0, 2.0)


@pytest.mark.parametrize(
    "data",
    [
        entity(Status=...),
        entity(Status="done"),
        entity(Key=...),
        entity(Token=3),
        entity(Fingerprint=b"fp"),
        entity(LockExpiresAt="soon"),
        entity(ExpiresAt=True),
        entity(ResultParts=...),
        entity(ResultParts=3),
        entity(ResultParts="2"),
        entity(Result1="2"),
    ],
)
def test_unreadable_entity_raises_corrupt_record(data: dict[str, Any]) -> None:
    with pytest.raises(CorruptRecordError):
        STORE._decode(data)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"connection_string": "UseDevelopmentStorage=true", "max_result_bytes": 0},
        {"connection_string": "UseDevelopmentStorage=true", "max_result_bytes": 16 * CHUNK_BYTES},
    ],
)
def test_invalid_options_raise_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        TableStore("idempotency", **options)


def test_importing_the_store_does_not_import_the_azure_sdk() -> None:
    code = (
        "import sys, polyserve_azure, polyserve_azure.idempotency\n"
        "from polyserve_azure.idempotency import TableStore\n"
        "TableStore('idempotency', endpoint='https://example.table.core.windows.net')\n"
        "loaded = [m for m in ('azure.data.tables', 'azure.core') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
