"""Kinesis and DynamoDB Streams tumbling windows: one ``StreamWindow``, the state answered."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Message, StreamRecord, StreamWindow
from polyserve.errors import ConfigurationError, MalformedEventError

UTC = dt.timezone.utc


def test_a_window_registration_gets_the_delivery_and_returns_the_state(
    lambda_context: FakeLambdaContext,
) -> None:
    app = App("walks")
    seen: list[StreamWindow] = []

    @app.stream("dog-walks", window=True)
    def totals(window: StreamWindow) -> dict[str, Any]:
        seen.append(window)
        minutes = sum(record.json()["minutes"] for record in window.records)  # type: ignore[union-attr]
        return {
            "walks": window.state.get("walks", 0) + len(window.records),
            "minutes": window.state.get("minutes", 0) + minutes,
        }

    raw = load("kinesis-window.json")
    out = polyserve_aws.handler(app)(raw, lambda_context)

    assert out == {"state": {"walks": 6, "minutes": 137}, "batchItemFailures": []}
    (window,) = seen
    assert window.source == "dog-walks"
    assert window.start == dt.datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    assert window.end == dt.datetime(2024, 5, 1, 11, 15, tzinfo=UTC)
    assert window.state == {"walks": 4, "minutes": 95}
    assert window.shard == "shardId-000000000004"
    assert not window.is_final
    assert not window.is_terminated_early
    assert [type(r) for r in window.records] == [Message, Message]
    assert [r.group_key for r in window.records] == ["kennel-3", "kennel-5"]  # type: ignore[union-attr]
    assert window.raw is raw


def test_the_final_delivery_may_hold_no_records(lambda_context: FakeLambdaContext) -> None:
    app = App("adoptions")
    written: list[dict[str, Any]] = []

    @app.stream("Adoptions", window=True)
    def close(window: StreamWindow) -> None:
        assert window.is_final
        assert window.records == ()
        written.append(dict(window.state))

    out = polyserve_aws.handler(app)(load("dynamodb-window-final.json"), lambda_context)
    assert written == [{"adoptions": 3}]
    assert out == {"state": {"adoptions": 3}, "batchItemFailures": []}  # None keeps it


def test_dynamodb_window_records_are_stream_records(lambda_context: FakeLambdaContext) -> None:
    raw = load("dynamodb-stream.json")
    raw.update(
        window={"start": "2024-05-01T12:00:00Z", "end": "2024-05-01T12:10:00Z"},
        state={}, shardId="shardId-1", eventSourceARN=raw["Records"][0]["eventSourceARN"],
        isFinalInvokeForWindow=False, isWindowTerminatedEarly=True,
    )  # fmt: skip
    table = polyserve_aws._wire.resource_name(raw["eventSourceARN"])
    app = App("t")
    seen: list[StreamWindow] = []

    @app.stream(table, window=True)
    def count(window: StreamWindow) -> dict[str, int]:
        seen.append(window)
        return {"n": len(window.records)}

    out = polyserve_aws.handler(app)(raw, lambda_context)
    assert out == {"state": {"n": len(raw["Records"])}, "batchItemFailures": []}
    assert all(isinstance(r, StreamRecord) for r in seen[0].records)
    assert seen[0].is_terminated_early


def test_a_record_registration_takes_the_records_and_the_state_passes_through(
    lambda_context: FakeLambdaContext,
) -> None:
    app = App("walks")
    seen: list[str] = []

    @app.stream("dog-walks")
    def each(message: Message) -> None:
        if message.group_key == "kennel-5":
            raise RuntimeError("no")
        seen.append(message.id)

    out = polyserve_aws.handler(app)(load("kinesis-window.json"), lambda_context)
    assert seen == ["49651111111111111111111111111111111111111111111111111101"]
    assert out == {
        "state": {"walks": 4, "minutes": 95},
        "batchItemFailures": [
            {"itemIdentifier": "49651111111111111111111111111111111111111111111111111102"}
        ],
    }
    # The final, empty delivery is answered too, with no handler call.
    empty = load("kinesis-window.json")
    empty.update(Records=[], isFinalInvokeForWindow=True)
    assert polyserve_aws.handler(app)(empty, lambda_context) == {
        "state": {"walks": 4, "minutes": 95},
        "batchItemFailures": [],
    }


def test_failures_fail_the_invocation_so_lambda_retries_with_the_same_state(
    lambda_context: FakeLambdaContext,
) -> None:
    app = App("walks")

    @app.stream("dog-walks", window=True)
    def totals(window: StreamWindow) -> dict[str, Any]:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError, match="store down"):
        polyserve_aws.handler(app)(load("kinesis-window.json"), lambda_context)

    bad = load("kinesis-window.json")
    bad["Records"][1]["kinesis"]["data"] = "not base64!"
    with pytest.raises(MalformedEventError):
        polyserve_aws.handler(app)(bad, lambda_context)


@pytest.mark.parametrize(
    "change",
    [
        {"window": {"start": "yesterday", "end": "2024-05-01T11:15:00Z"}},
        {"window": {"end": "2024-05-01T11:15:00Z"}},
        {"state": ["not", "an", "object"]},
        {"shardId": 4},
        {"Records": {"not": "a list"}},
    ],
)
def test_malformed_window_fields(lambda_context: FakeLambdaContext, change: dict[str, Any]) -> None:
    app = App("walks")
    app.stream("dog-walks", window=True)(lambda window: {})
    raw = load("kinesis-window.json")
    raw.update(change)
    with pytest.raises(MalformedEventError):
        polyserve_aws.handler(app)(raw, lambda_context)


def test_a_state_that_is_not_an_object_is_a_configuration_error(
    lambda_context: FakeLambdaContext,
) -> None:
    app = App("walks")
    app.stream("dog-walks", window=True)(lambda window: 42)
    with pytest.raises(ConfigurationError, match="dict"):
        polyserve_aws.handler(app)(load("kinesis-window.json"), lambda_context)


def test_no_registration_for_the_window(lambda_context: FakeLambdaContext) -> None:
    empty = load("dynamodb-window-final.json")
    assert polyserve_aws.handler(App("none"))(empty, lambda_context) == {
        "state": {"adoptions": 3},
        "batchItemFailures": [],
    }
    # With records and no handler, each record fails alone, as without a window.
    out = polyserve_aws.handler(App("none"))(load("kinesis-window.json"), lambda_context)
    assert len(out["batchItemFailures"]) == 2
