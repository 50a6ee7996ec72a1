"""Google's wire formats: RFC 3339 times, base64, JSON objects, payloads, resource names."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from polyserve.adapter import from_rfc3339, json_object, optional_text, text
from polyserve.errors import MalformedEventError
from polyserve_gcp._formats import decode_base64, last_segment, payload
from polyserve_gcp._names import Names

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00.25Z", dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        # Nanoseconds are cut (not rounded) to microseconds.
        ("2024-05-01T10:00:00.123456789Z", dt.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01t10:00:00z", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:30:00+02:30", dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01T08:00:00-02:00", dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_from_rfc3339_gives_utc(value: str, expected: dt.datetime) -> None:
    parsed = from_rfc3339(value, "t")
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", ["2024-05-01", "2024-05-01T10:00:00"])
def test_from_rfc3339_reads_a_time_without_zone_as_utc(value: str) -> None:
    # The shared adapter reader, as on every provider: no zone means UTC.
    assert from_rfc3339(value, "t") == dt.datetime(
        2024, 5, 1, 10 if "T" in value else 0, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["", "2024-13-01T10:00:00Z", "yesterday", 1714557600, None])
def test_from_rfc3339_rejects_other_forms(value: Any) -> None:
    with pytest.raises(MalformedEventError, match="publishTime"):
        from_rfc3339(value, "publishTime")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("aGVsbG8=", b"hello"), ("aGVsbG8", b"hello"), ("-_8=", b"\xfb\xff"), ("", b"")],
)
def test_decode_base64_accepts_standard_urlsafe_and_unpadded(value: str, expected: bytes) -> None:
    assert decode_base64(value, "data") == expected


@pytest.mark.parametrize("value", ["not base64!", "é", 42, None])
def test_decode_base64_rejects_garbage_with_its_code(value: Any) -> None:
    with pytest.raises(MalformedEventError) as info:
        decode_base64(value, "data")
    assert info.value.code == "invalid_base64"


@pytest.mark.parametrize(
    ("data", "expected"),
    [({"a": 1}, {"a": 1}), (b'{"a": 1}', {"a": 1}), ('{"a": 1}', {"a": 1})],
)
def test_json_object_accepts_decoded_or_encoded_objects(data: Any, expected: Any) -> None:
    assert json_object(data, "data") == expected


def test_json_object_rejects_bad_json_with_its_code() -> None:
    with pytest.raises(MalformedEventError) as info:
        json_object(b"\x0a\x02", "data")
    assert info.value.code == "invalid_json"


@pytest.mark.parametrize("data", [None, [1], "3", 3])
def test_json_object_rejects_non_objects(data: Any) -> None:
    with pytest.raises(MalformedEventError):
        json_object(data, "data")


def test_text_readers_name_the_field() -> None:
    assert text({"a": "x"}, "a", "thing") == "x"
    assert optional_text({}, "a", "thing") is None
    with pytest.raises(MalformedEventError, match="thing field 'a' is missing"):
        text({}, "a", "thing")
    with pytest.raises(MalformedEventError, match="must be a string"):
        optional_text({"a": 1}, "a", "thing")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", None),
        (b"  \n", None),
        (b'{"scope": "all"}', {"scope": "all"}),
        (b"42", 42),
        (b"run now", "run now"),
        (b"\xff\x00", b"\xff\x00"),
    ],
)
def test_payload_is_json_then_text_then_bytes(body: bytes, expected: Any) -> None:
    assert payload(body) == expected


@pytest.mark.parametrize(
    ("resource", "collection", "expected"),
    [
        ("projects/p/topics/orders", "topics", "orders"),
        ("projects/p/subscriptions/orders-sub", "subscriptions", "orders-sub"),
        ("projects/p/locations/l/jobs/nightly", "jobs", "nightly"),
        ("topics/orders", "topics", "orders"),
        ("projects/p/topics/", "topics", None),
        ("projects/p/topics/a/b", "topics", None),
        ("projects/p/mytopics/x", "topics", None),
        ("orders", "topics", None),
    ],
)
def test_last_segment(resource: str, collection: str, expected: str | None) -> None:
    assert last_segment(resource, collection) == expected


def test_names_map_either_id_and_default_to_the_short_one() -> None:
    names = Names({"projects/p/topics/orders-prod": "orders", "uploads-prod": "uploads"})
    assert names.logical("projects/p/topics/orders-prod", "orders-prod") == "orders"
    assert names.logical(None, "uploads-prod") == "uploads"
    assert names.logical("projects/p/topics/other", "other") == "other"
    assert Names().logical("projects/p/topics/a", "a") == "a"
    assert Names().logical() == ""


_DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("data", [_DEEP, _DEEP.encode()])
def test_json_nested_past_the_stack_is_invalid_json(data: str | bytes) -> None:
    with pytest.raises(MalformedEventError) as info:
        json_object(data, "data")
    assert (info.value.code, info.value.detail) == (
        "invalid_json",
        "data is not valid JSON: nested too deeply",
    )


def test_a_payload_nested_past_the_stack_stays_text() -> None:
    assert payload(_DEEP.encode()) == _DEEP
