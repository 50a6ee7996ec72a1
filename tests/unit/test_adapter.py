"""The adapter-facing module: field readers, timestamps, base64 and running a source."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from polyserve import adapter
from polyserve.errors import MalformedEventError

UTC = dt.timezone.utc


def test_timestamps() -> None:
    assert adapter.from_epoch_ms("1714557600123", "t") == dt.datetime(
        2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC
    )
    assert adapter.from_epoch(1714557600.5, "t") == dt.datetime(2024, 5, 1, 10, 0, 0, 500000, UTC)
    assert adapter.from_rfc3339("2024-05-01T10:00:00Z", "t") == dt.datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )
    assert adapter.from_rfc3339("2024-05-01T10:00:00.250Z", "t").microsecond == 250000
    assert adapter.from_rfc3339("2024-05-01T12:00:00+02:00", "t") == dt.datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )
    assert adapter.from_rfc3339("2024-05-01T10:00:00", "t").tzinfo is UTC


@pytest.mark.parametrize("value", ["soon", None, [], "1e999999", 10**30])
def test_bad_epoch_values(value: Any) -> None:
    with pytest.raises(MalformedEventError, match="timestamp"):
        adapter.from_epoch(value, "t")
    with pytest.raises(MalformedEventError, match="timestamp"):
        adapter.from_epoch_ms(value, "t")


@pytest.mark.parametrize("value", ["soon", None, 5, "2024-13-01T00:00:00Z"])
def test_bad_iso_values(value: Any) -> None:
    with pytest.raises(MalformedEventError, match="RFC 3339"):
        adapter.from_rfc3339(value, "t")


@pytest.mark.parametrize("value", ["abc", "a===", "aGVsbG8=\n!", 5, None])
def test_invalid_base64(value: Any) -> None:
    with pytest.raises(MalformedEventError) as info:
        adapter.decode_base64(value, "body")
    assert info.value.code == "invalid_base64"


def test_text_fields() -> None:
    obj = {"a": "x", "b": 1, "c": None}
    assert adapter.text(obj, "a", "thing") == "x"
    assert adapter.optional_text(obj, "c", "thing") is None
    assert adapter.optional_text(obj, "missing", "thing") is None
    with pytest.raises(MalformedEventError, match="'b' must be a string"):
        adapter.text(obj, "b", "thing")
    with pytest.raises(MalformedEventError, match="'c' is missing"):
        adapter.text(obj, "c", "thing")
    with pytest.raises(MalformedEventError):
        adapter.optional_text(obj, "b", "thing")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (KeyError("messageId"), "missing field 'messageId'"),
        (TypeError("x"), "a field has the wrong type"),
        (ValueError("invalid literal"), "invalid literal"),
        (RecursionError("maximum recursion depth exceeded"), "a value is nested too deeply"),
    ],
)
def test_malformed_explains_the_cause(exc: Exception, reason: str) -> None:
    error = adapter.malformed("SQS record", exc)
    assert error.detail == f"malformed SQS record: {reason}"
    assert error.code == "malformed_event"
