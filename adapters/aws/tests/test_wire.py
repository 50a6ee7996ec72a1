"""Reading AWS's JSON: ARNs, logical names, timestamps and base64."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from polyserve.errors import MalformedEventError
from polyserve_aws import _wire

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:sqs:eu-west-1:210987654321:adoptions", "adoptions"),
        ("arn:aws:sqs:eu-west-1:210987654321:adoptions.fifo", "adoptions.fifo"),
        ("arn:aws:sns:eu-west-1:210987654321:pet-alerts", "pet-alerts"),
        ("arn:aws:kinesis:eu-west-1:210987654321:stream/pet-activity", "pet-activity"),
        ("arn:aws:dynamodb:eu-west-1:2109:table/Pets/stream/2024-05-01T00:00:00.000", "Pets"),
        ("arn:aws:events:us-east-1:210987654321:rule/nightly-report", "nightly-report"),
        ("arn:aws:events:us-east-1:210987654321:rule/custom-bus/nightly", "nightly"),
        ("arn:aws:scheduler:us-east-1:210987654321:schedule/default/weekly", "weekly"),
        ("arn:aws-cn:sqs:cn-north-1:210987654321:orders", "orders"),
        ("pet-photos", "pet-photos"),
        ("", ""),
    ],
)
def test_resource_name(arn: str, name: str) -> None:
    assert _wire.resource_name(arn) == name


def test_logical_name_prefers_the_arn_then_the_short_name() -> None:
    arn = "arn:aws:sqs:eu-west-1:210987654321:prod-orders-3F2A"
    assert _wire.logical_name(arn, {}) == "prod-orders-3F2A"
    assert _wire.logical_name(arn, {"prod-orders-3F2A": "orders"}) == "orders"
    assert _wire.logical_name(arn, {arn: "by-arn", "prod-orders-3F2A": "by-name"}) == "by-arn"
    assert _wire.logical_name(arn, {"other": "x"}) == "prod-orders-3F2A"


def test_timestamps() -> None:
    assert _wire.from_epoch_ms("1714557600123", "t") == dt.datetime(
        2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC
    )
    assert _wire.from_epoch(1714557600.5, "t") == dt.datetime(2024, 5, 1, 10, 0, 0, 500000, UTC)
    assert _wire.from_iso("2024-05-01T10:00:00Z", "t") == dt.datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert _wire.from_iso("2024-05-01T10:00:00.250Z", "t").microsecond == 250000
    assert _wire.from_iso("2024-05-01T12:00:00+02:00", "t") == dt.datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )
    assert _wire.from_iso("2024-05-01T10:00:00", "t").tzinfo is UTC


@pytest.mark.parametrize("value", ["soon", None, [], "1e999999", 10**30])
def test_bad_epoch_values(value: Any) -> None:
    with pytest.raises(MalformedEventError, match="timestamp"):
        _wire.from_epoch(value, "t")
    with pytest.raises(MalformedEventError, match="timestamp"):
        _wire.from_epoch_ms(value, "t")


@pytest.mark.parametrize("value", ["soon", None, 5, "2024-13-01T00:00:00Z"])
def test_bad_iso_values(value: Any) -> None:
    with pytest.raises(MalformedEventError, match="ISO 8601"):
        _wire.from_iso(value, "t")


@pytest.mark.parametrize("value", ["abc", "a===", "aGVsbG8=\n!", 5, None])
def test_invalid_base64(value: Any) -> None:
    with pytest.raises(MalformedEventError) as info:
        _wire.decode_base64(value, "body")
    assert info.value.code == "invalid_base64"


def test_text_fields() -> None:
    obj = {"a": "x", "b": 1, "c": None}
    assert _wire.text(obj, "a", "thing") == "x"
    assert _wire.optional_text(obj, "c", "thing") is None
    assert _wire.optional_text(obj, "missing", "thing") is None
    with pytest.raises(MalformedEventError, match="'b' must be a string"):
        _wire.text(obj, "b", "thing")
    with pytest.raises(MalformedEventError, match="'c' is missing"):
        _wire.text(obj, "c", "thing")
    with pytest.raises(MalformedEventError):
        _wire.optional_text(obj, "b", "thing")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (KeyError("messageId"), "missing field 'messageId'"),
        (TypeError("x"), "a field has the wrong type"),
        (ValueError("invalid literal"), "invalid literal"),
    ],
)
def test_malformed_explains_the_cause(exc: Exception, reason: str) -> None:
    error = _wire.malformed("SQS record", exc)
    assert error.detail == f"malformed SQS record: {reason}"
    assert error.code == "malformed_event"
