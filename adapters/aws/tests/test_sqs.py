"""SQS batches: messages, partial batch failures and FIFO ordering."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import pickle
from typing import TYPE_CHECKING

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Message
from polyserve.errors import ConfigurationError, MalformedEventError
from polyserve_aws import _sqs

if TYPE_CHECKING:
    from polyserve_testkit.recorder import Recorder


def test_records_become_messages(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    raw = load("sqs-standard.json")

    out = polyserve_aws.handler(recorder.app)(raw, lambda_context)

    assert out == {"batchItemFailures": []}
    first, second = recorder.seen
    assert isinstance(first, Message)
    assert first.id == "a1b2c3d4-0001-4000-8000-000000000001"
    assert first.json() == {"pet_id": 1, "adopter": "Ada"}
    assert first.attributes == {"tenant": "acme", "priority": "5", "signature": "c2lnbmVk"}
    assert first.attempt == 1
    assert first.enqueued_at == dt.datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=dt.timezone.utc)
    assert first.source == "adoptions"
    assert first.group_key is None
    assert first.raw is raw["Records"][0]
    assert second.text == "plain text, ünïcödé"
    assert second.attempt == 3
    assert second.attributes == {}


def _failing_app(bad_bodies: set[str], name: str = "adoptions") -> tuple[App, list[str]]:
    app = App("sqs")
    handled: list[str] = []

    @app.queue(name)
    def on_message(message: Message) -> None:
        if message.text in bad_bodies:
            raise ValueError("bad message")
        handled.append(message.text)

    return app, handled


def test_only_failed_messages_are_reported(lambda_context: FakeLambdaContext) -> None:
    app, handled = _failing_app({"plain text, ünïcödé"})

    out = polyserve_aws.handler(app)(load("sqs-standard.json"), lambda_context)

    assert out == {
        "batchItemFailures": [{"itemIdentifier": "a1b2c3d4-0002-4000-8000-000000000002"}]
    }
    assert handled == ['{"pet_id": 1, "adopter": "Ada"}']


def test_a_malformed_record_fails_alone(lambda_context: FakeLambdaContext) -> None:
    app, handled = _failing_app(set())
    raw = load("sqs-standard.json")
    del raw["Records"][0]["body"]

    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert out == {
        "batchItemFailures": [{"itemIdentifier": "a1b2c3d4-0001-4000-8000-000000000001"}]
    }
    assert handled == ["plain text, ünïcödé"]


def test_fifo_failure_stops_only_its_message_group(lambda_context: FakeLambdaContext) -> None:
    app, handled = _failing_app({"first"}, name="adoptions.fifo")

    out = polyserve_aws.handler(app)(load("sqs-fifo.json"), lambda_context)

    # f1f0-0001 and -0002 are group pet-7; -0003 is pet-8, which carries on.
    assert handled == ["third"]
    assert out == {
        "batchItemFailures": [{"itemIdentifier": "f1f0-0001"}, {"itemIdentifier": "f1f0-0002"}]
    }


def test_fifo_failure_batch_stops_everything_after_it(lambda_context: FakeLambdaContext) -> None:
    app, handled = _failing_app({"second"}, name="adoptions.fifo")

    out = polyserve_aws.handler(app, fifo_failure="batch")(load("sqs-fifo.json"), lambda_context)

    assert handled == ["first"]
    assert out == {
        "batchItemFailures": [{"itemIdentifier": "f1f0-0002"}, {"itemIdentifier": "f1f0-0003"}]
    }


def test_a_fifo_record_without_a_readable_group_stops_the_batch_when_it_fails(
    lambda_context: FakeLambdaContext,
) -> None:
    app, handled = _failing_app({"first"}, name="adoptions.fifo")
    raw = load("sqs-fifo.json")
    raw["Records"][0]["attributes"]["MessageGroupId"] = 7  # which group it is, nobody knows

    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert handled == []
    assert [f["itemIdentifier"] for f in out["batchItemFailures"]] == [
        "f1f0-0001", "f1f0-0002", "f1f0-0003",
    ]  # fmt: skip

    # And after any failure, such a record waits: it may belong to the failed group.
    app, handled = _failing_app({"first"}, name="adoptions.fifo")
    raw = load("sqs-fifo.json")
    del raw["Records"][2]["attributes"]["MessageGroupId"]
    out = polyserve_aws.handler(app)(raw, lambda_context)
    assert handled == []
    assert len(out["batchItemFailures"]) == 3


def test_fifo_failure_takes_group_or_batch_only() -> None:
    with pytest.raises(ConfigurationError, match="fifo_failure"):
        polyserve_aws.handler(App("x"), fifo_failure="queue")  # type: ignore[arg-type]


def test_fifo_group_key(recorder: Recorder, lambda_context: FakeLambdaContext) -> None:
    polyserve_aws.handler(recorder.app)(load("sqs-fifo.json"), lambda_context)

    assert [m.group_key for m in recorder.seen] == ["pet-7", "pet-7", "pet-8"]
    assert [m.source for m in recorder.seen] == ["adoptions.fifo"] * 3


def test_fifo_is_detected_by_group_id_without_the_suffix() -> None:
    record = load("sqs-fifo.json")["Records"][0]
    record["eventSourceARN"] = "arn:aws:sqs:us-east-1:210987654321:renamed"
    assert _sqs.is_fifo(record)
    assert not _sqs.is_fifo(load("sqs-standard.json")["Records"][0])


@pytest.mark.parametrize(
    "names",
    [
        {"arn:aws:sqs:eu-west-1:210987654321:adoptions": "orders"},
        {"adoptions": "orders"},
    ],
)
def test_names_map_queue_arn_or_name(
    names: dict[str, str], lambda_context: FakeLambdaContext
) -> None:
    app, handled = _failing_app(set(), name="orders")

    out = polyserve_aws.handler(app, names=names)(load("sqs-standard.json"), lambda_context)

    assert out == {"batchItemFailures": []}
    assert len(handled) == 2


def test_unregistered_queue_fails_every_record(lambda_context: FakeLambdaContext) -> None:
    out = polyserve_aws.handler(App("none"))(load("sqs-standard.json"), lambda_context)

    assert len(out["batchItemFailures"]) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"messageId": 5},
        {"attributes": {"ApproximateReceiveCount": "many"}},
        {"attributes": {"SentTimestamp": "yesterday"}},
        {"messageAttributes": {"a": "not an object"}},
        {"eventSourceARN": None},
    ],
)
def test_to_event_maps_bad_fields_to_malformed_event(change: dict[str, object]) -> None:
    record = load("sqs-standard.json")["Records"][0] | change

    with pytest.raises(MalformedEventError):
        _sqs.message(record, {})


def test_messages_are_plain_messages() -> None:
    record = load("sqs-standard.json")["Records"][0]
    message = _sqs.message(record, {})
    assert type(message) is Message
    assert message.source == "adoptions"
    assert message.attempt == 1
    copied = pickle.loads(pickle.dumps(message))
    assert copied == message
    assert copy.copy(message) == message
    assert dataclasses.replace(message, attempt=4).attempt == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.id = "x"  # type: ignore[misc]  # the point of the test


@pytest.mark.parametrize(
    ("change", "item"),
    [
        ({"body": None}, "a1b2c3d4-0001-4000-8000-000000000001"),
        ({"messageId": 5}, "5"),
        (
            {"attributes": {"ApproximateReceiveCount": "many"}},
            "a1b2c3d4-0001-4000-8000-000000000001",
        ),
        ({"attributes": {"SentTimestamp": "yesterday"}}, "a1b2c3d4-0001-4000-8000-000000000001"),
        ({"attributes": "none"}, "a1b2c3d4-0001-4000-8000-000000000001"),
    ],
)
@pytest.mark.parametrize("max_attempts", [None, 3])
def test_a_record_with_a_malformed_field_fails_alone(
    lambda_context: FakeLambdaContext,
    change: dict[str, object],
    item: str,
    max_attempts: int | None,
) -> None:
    app = App("strict")
    handled: list[str] = []
    options = {} if max_attempts is None else {"max_attempts": max_attempts}

    @app.queue("adoptions", **options)
    def on_message(message: Message) -> None:
        handled.append(message.id)

    raw = load("sqs-standard.json")
    raw["Records"][0] |= change

    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert [f["itemIdentifier"] for f in out["batchItemFailures"]] == [item]
    # The other record of the batch was handled and is not redelivered.
    assert handled == [raw["Records"][1]["messageId"]]


@pytest.mark.parametrize("count", ["abc", "", None, ["3"], {"n": 3}, "2.5"])
@pytest.mark.parametrize("hook", ["takes", "raises"])
def test_a_failed_record_whose_receive_count_is_unreadable_fails_alone(
    lambda_context: FakeLambdaContext, count: object, hook: str
) -> None:
    # max_attempts reads the count only once a record has failed: a bad count must
    # fail that record, and the others, handled already, must not be redelivered.
    app = App("sqs")
    handled: list[str] = []
    hooked: list[str] = []

    def on_poison(message: Message, exc: Exception, ctx: object) -> None:
        hooked.append(message.text)
        if hook == "raises":
            raise OSError("dead-letter store unreachable")

    @app.queue("adoptions", max_attempts=3, on_poison=on_poison)
    def on_message(message: Message) -> None:
        if message.text.startswith("plain"):
            raise ValueError("bad message")
        handled.append(message.text)

    raw = load("sqs-standard.json")
    broken = raw["Records"][1]  # the failing one
    broken["attributes"]["ApproximateReceiveCount"] = count
    third = copy.deepcopy(raw["Records"][0])
    third["messageId"], third["body"] = "third", "{}"
    raw["Records"].append(third)

    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert out == {"batchItemFailures": [{"itemIdentifier": broken["messageId"]}]}
    assert handled == ['{"pet_id": 1, "adopter": "Ada"}', "{}"]
    assert hooked == []


def test_an_on_poison_hook_that_raises_fails_its_record_alone(
    lambda_context: FakeLambdaContext,
) -> None:
    app = App("sqs")

    def on_poison(message: Message, exc: Exception, ctx: object) -> None:
        raise OSError("dead-letter store unreachable")

    @app.queue("adoptions", max_attempts=2, on_poison=on_poison)
    def on_message(message: Message) -> None:
        if message.attempt >= 2:
            raise ValueError("poison")

    raw = load("sqs-standard.json")  # the second record is on its third attempt

    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert out == {"batchItemFailures": [{"itemIdentifier": raw["Records"][1]["messageId"]}]}


def test_a_record_without_an_id_fails_alone_reported_by_its_position(
    lambda_context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    app = App("sqs")
    handled: list[str] = []

    @app.queue("adoptions", max_attempts=2, on_poison=lambda m, e, c: None)
    def on_message(message: Message) -> None:
        handled.append(message.id)

    raw = load("sqs-standard.json")
    del raw["Records"][1]["messageId"]  # reported by its position

    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert out == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert handled == [raw["Records"][0]["messageId"]]
    assert "missing field 'messageId'" in caplog.text


def test_a_body_marked_base64_is_decoded_and_the_mark_left_out(
    lambda_context: FakeLambdaContext,
) -> None:
    import base64

    app = App("binary")
    seen: list[Message] = []

    @app.queue("*")
    def consume(message: Message) -> None:
        seen.append(message)

    raw = load("sqs-standard.json")
    first, second = raw["Records"]
    first["body"] = base64.b64encode(b"\x00\xff binary").decode()
    first["messageAttributes"]["content-transfer-encoding"] = {
        "stringValue": "base64",
        "dataType": "String",
    }
    second["body"] = "not base64!"
    second["messageAttributes"] = {
        "content-transfer-encoding": {"stringValue": "base64", "dataType": "String"}
    }
    out = polyserve_aws.handler(app)(raw, lambda_context)
    assert out == {"batchItemFailures": [{"itemIdentifier": second["messageId"]}]}
    (got,) = seen
    assert got.body == b"\x00\xff binary"
    assert "content-transfer-encoding" not in got.attributes
    assert got.attributes["tenant"] == "acme"
