"""Reading host values: every reader maps a wrong value to ``MalformedEventError``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from polyserve import MalformedEventError
from polyserve.adapter import translating
from polyserve_azure import _wire

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2024-06-03T09:41:07Z", dt.datetime(2024, 6, 3, 9, 41, 7, tzinfo=UTC)),
        ("2024-06-03T09:41:07.5Z", dt.datetime(2024, 6, 3, 9, 41, 7, 500000, tzinfo=UTC)),
        ("2024-06-03T09:41:07.1234567Z", dt.datetime(2024, 6, 3, 9, 41, 7, 123456, tzinfo=UTC)),
        ("2024-06-03T11:41:07+02:00", dt.datetime(2024, 6, 3, 9, 41, 7, tzinfo=UTC)),
        ("2024-06-03T09:41:07", dt.datetime(2024, 6, 3, 9, 41, 7, tzinfo=UTC)),
        ("06/03/2024 09:41:07+00:00", dt.datetime(2024, 6, 3, 9, 41, 7, tzinfo=UTC)),
        ("06/03/2024 09:41:07", dt.datetime(2024, 6, 3, 9, 41, 7, tzinfo=UTC)),
        ("06/03/2024 09:41:07.25Z", dt.datetime(2024, 6, 3, 9, 41, 7, 250000, tzinfo=UTC)),
        (dt.datetime(2024, 6, 3, 9, 41, 7), dt.datetime(2024, 6, 3, 9, 41, 7, tzinfo=UTC)),
    ],
)
def test_times_are_utc(value: object, expected: dt.datetime | None) -> None:
    parsed = _wire.utc(value, "time")
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", ["tomorrow", "2024-13-01T00:00:00Z", 1717407379, ["2024"]])
def test_bad_times_are_malformed(value: object) -> None:
    with pytest.raises(MalformedEventError, match="time"):
        _wire.utc(value, "time")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b""),
        (b"a", b"a"),
        (bytearray(b"b"), b"b"),
        (memoryview(b"c"), b"c"),
        ("é", "é".encode()),
    ],
)
def test_bodies_are_bytes(value: object, expected: bytes) -> None:
    assert _wire.body(value, "body") == expected


@pytest.mark.parametrize(
    ("reader", "value"),
    [
        (_wire.body, 5),
        (_wire.text, None),
        (_wire.text, ""),
        (_wire.text, 5),
        (_wire.optional_text, 5),
        (_wire.attempt, True),
        (_wire.attempt, "2"),
        (_wire.properties, ["a"]),
    ],
)
def test_wrong_values_are_malformed(reader: Any, value: object) -> None:
    with pytest.raises(MalformedEventError):
        reader(value, "field")


def test_counts_start_at_one() -> None:
    assert [_wire.attempt(v, "n") for v in (None, 0, 1, 7)] == [1, 1, 1, 7]


def test_properties_are_strings() -> None:
    when = dt.datetime(2024, 6, 3, tzinfo=UTC)
    assert _wire.properties({"t": when, "n": None, 3: "x"}, "p") == {
        "t": "2024-06-03T00:00:00+00:00",
        "3": "x",
    }


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (KeyError("id"), "missing field 'id'"),
        (AttributeError("no", name="get_body"), "missing attribute 'get_body'"),
        (TypeError("bad type"), "a field has the wrong type"),
    ],
)
def test_translating_turns_lookup_errors_into_malformed_events(
    error: Exception, message: str
) -> None:
    with pytest.raises(MalformedEventError, match=message), translating("thing"):
        raise error


def test_translating_leaves_other_errors_alone() -> None:
    with pytest.raises(ZeroDivisionError), translating("thing"):
        _ = 1 / 0


def test_properties_nested_past_the_stack_are_malformed() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with (
        pytest.raises(MalformedEventError, match="a value is nested too deeply"),
        translating("Service Bus message"),
    ):
        _wire.properties({"deep": deep}, "p")
