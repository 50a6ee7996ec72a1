"""DynamoDB Streams: AttributeValues to plain values, ordered partial failures."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, ChangeType, StreamRecord
from polyserve.errors import MalformedEventError
from polyserve_aws import _dynamodb

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"S": "x"}, "x"),
        ({"N": "42"}, 42),
        ({"N": "-7"}, -7),
        ({"N": "4.25"}, 4.25),
        ({"N": "1E+3"}, 1000.0),
        ({"N": "123456789012345678901234567890"}, 123456789012345678901234567890),
        ({"BOOL": False}, False),
        ({"NULL": True}, None),
        ({"B": "AQID"}, b"\x01\x02\x03"),
        ({"SS": ["a", "b"]}, ["a", "b"]),
        ({"NS": ["1", "2.5"]}, [1, 2.5]),
        ({"BS": ["AA==", "/w=="]}, [b"\x00", b"\xff"]),
        ({"L": [{"S": "a"}, {"N": "1"}, {"L": []}]}, ["a", 1, []]),
        ({"M": {"a": {"M": {"b": {"NULL": True}}}}}, {"a": {"b": None}}),
    ],
)
def test_plain_values(value: dict[str, Any], plain: Any) -> None:
    converted = _dynamodb.plain_value(value)
    assert converted == plain
    assert type(converted) is type(plain)


@pytest.mark.parametrize(
    "value",
    [
        {"S": 1},
        {"N": 5},
        {"N": "five"},
        {"B": "%%%"},
        {"X": "unknown"},
        {"S": "a", "N": "1"},
        {},
        "S",
        {"BOOL": "yes"},
        {"SS": [1]},
        {"M": []},
    ],
)
def test_invalid_attribute_values(value: Any) -> None:
    with pytest.raises((MalformedEventError, ValueError)):
        _dynamodb.plain_value(value)


def test_records_become_stream_records(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("dynamodb-stream.json")

    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert out == {"batchItemFailures": []}
    insert, modify, remove = recorder.seen
    assert isinstance(insert, StreamRecord)
    assert insert.change is ChangeType.INSERT
    assert insert.source == "Pets"
    assert insert.id == "e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6"
    assert insert.keys == {"pk": "PET#7", "sk": 1}
    assert insert.old is None
    assert insert.new is not None
    assert insert.new["weight"] == 4.25
    assert insert.new["photo"] == b"\x01\x02\x03"
    assert insert.new["owner"] == {"name": "Ada", "visits": [2024, "x"]}
    assert insert.sequence == "100000000000000000001"
    assert insert.occurred_at == dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    assert modify.change is ChangeType.MODIFY
    assert (modify.old["name"], modify.new["name"]) == ("Tom", "Thomas")
    assert modify.occurred_at.microsecond == 500000
    assert remove.change is ChangeType.REMOVE
    assert remove.new is None
    assert remove.keys == {"pk": "PET#9", "sk": 1}


def test_first_failure_stops_the_batch(lambda_context: FakeLambdaContext) -> None:
    app = App("ddb")
    handled: list[str] = []

    @app.stream("Pets")
    def on_change(record: StreamRecord) -> None:
        if record.change is ChangeType.MODIFY:
            raise ValueError("cannot apply")
        handled.append(record.id)

    out = polyserve_aws.handler(app)(load("dynamodb-stream.json"), lambda_context)

    assert handled == ["e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6"]
    assert out == {
        "batchItemFailures": [
            {"itemIdentifier": "100000000000000000002"},
            {"itemIdentifier": "100000000000000000003"},
        ]
    }


def test_a_malformed_record_fails_with_everything_after_it(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("dynamodb-stream.json")
    raw["Records"][1]["dynamodb"]["NewImage"]["name"] = {"Q": "?"}

    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert len(recorder.seen) == 1
    assert [f["itemIdentifier"] for f in out["batchItemFailures"]] == [
        "100000000000000000002",
        "100000000000000000003",
    ]


@pytest.mark.parametrize(
    "change",
    [{"eventName": "UPSERT"}, {"eventName": None}, {"dynamodb": None}, {"eventSourceARN": 1}],
)
def test_malformed_records(change: dict[str, Any]) -> None:
    record = load("dynamodb-stream.json")["Records"][0] | change

    with pytest.raises(MalformedEventError):
        _dynamodb.stream_record(record, {})
