"""Kinesis Data Streams: base64 data, ordered partial failures."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Message
from polyserve.errors import MalformedEventError
from polyserve_aws import _kinesis

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder

SEQ1 = "49650000000000000000000000000000000000000000000000000001"
SEQ2 = "49650000000000000000000000000000000000000000000000000002"


def test_records_become_messages(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    raw = load("kinesis.json")

    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert out == {"batchItemFailures": []}
    first, second = recorder.seen
    assert isinstance(first, Message)
    assert first.id == SEQ1
    assert first.json() == {"event": "fed", "pet_id": 7}
    assert first.group_key == "pet-7"
    assert first.source == "pet-activity"
    assert first.attempt == 1
    assert first.enqueued_at == dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=dt.timezone.utc)
    assert second.body == b"\x00\xff\x01\x02"


def test_invalid_data_fails_that_record_and_the_rest(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    raw = load("kinesis.json")
    raw["Records"][0]["kinesis"]["data"] = "not base64 at all!"

    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert recorder.seen == []
    assert out == {"batchItemFailures": [{"itemIdentifier": SEQ1}, {"itemIdentifier": SEQ2}]}


def test_failing_handler_reports_by_sequence_number(lambda_context: FakeLambdaContext) -> None:
    app = App("kinesis")
    handled: list[str] = []

    @app.stream("activity")
    def on_record(message: Message) -> None:
        if message.group_key == "pet-8":
            raise ValueError("boom")
        handled.append(message.id)

    out = polyserve_aws.handler(app, names={"pet-activity": "activity"})(
        load("kinesis.json"), lambda_context
    )

    assert handled == [SEQ1]
    assert out == {"batchItemFailures": [{"itemIdentifier": SEQ2}]}


def test_invalid_base64_has_its_own_code() -> None:
    record = load("kinesis.json")["Records"][0]
    record["kinesis"]["data"] = "@@@@"

    with pytest.raises(MalformedEventError) as info:
        _kinesis.message(record, {})
    assert info.value.code == "invalid_base64"
