"""MSK and self-managed Kafka records as ``Message``s, in order, stopping at the first failure."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Message, SetAside
from polyserve.errors import MalformedEventError
from polyserve_aws import _kafka


def _app(fail_on: str | None = None) -> tuple[App, list[Message]]:
    app = App("kafka")
    seen: list[Message] = []

    @app.stream("*")
    def handle(event: Message) -> None:
        seen.append(event)
        if event.id == fail_on:
            raise RuntimeError("boom")

    return app, seen


def test_records_become_messages(lambda_context: FakeLambdaContext) -> None:
    app, seen = _app()
    assert polyserve_aws.handler(app)(load("kafka-msk.json"), lambda_context) is None
    assert [m.id for m in seen] == ["orders-0@4101", "orders-0@4102", "orders-3@88"]
    first = seen[0]
    assert first.json() == {"order": "A-1", "total": 12.5}
    assert first.group_key == "customer-17"
    assert first.source == "orders"
    assert first.attributes["content-type"] == "application/json"
    assert first.enqueued_at == dt.datetime(2025, 12, 5, 2, 0, 0, 123000, tzinfo=dt.timezone.utc)
    assert first.attempt == 1
    assert seen[1].group_key is None  # a record without a key is an ordinary record


def test_self_managed_and_names(lambda_context: FakeLambdaContext) -> None:
    app = App("kafka")
    seen: list[Message] = []
    app.stream("audit-log")(seen.append)
    polyserve_aws.handler(app, names={"audit": "audit-log"})(
        load("kafka-self-managed.json"), lambda_context
    )
    assert [(m.source, m.text, m.attributes) for m in seen] == [
        ("audit-log", "login ok", {"origin": "web"})
    ]


def test_first_failure_stops_the_batch_and_raises(lambda_context: FakeLambdaContext) -> None:
    app, seen = _app(fail_on="orders-0@4102")
    with pytest.raises(RuntimeError, match="boom"):
        polyserve_aws.handler(app)(load("kafka-msk.json"), lambda_context)
    assert [m.id for m in seen] == ["orders-0@4101", "orders-0@4102"]


def test_set_aside_counts_as_handled(lambda_context: FakeLambdaContext) -> None:
    app = App("kafka")
    app.stream("orders")(lambda event: SetAside())
    assert polyserve_aws.handler(app)(load("kafka-msk.json"), lambda_context) is None


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = load("kafka-msk.json")["records"]["orders-0"][0]
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"value": None}, "has no value"),
        ({"headers": [{"bin": [255, 254]}]}, "header 'bin' is not UTF-8"),
        ({"value": "not base64!"}, "not valid base64"),
        ({"topic": 5}, "topic must be a string"),
        ({"headers": "x"}, "Kafka record"),
    ],
)
def test_bad_records_fail_alone(
    changes: dict[str, Any], message: str, lambda_context: FakeLambdaContext
) -> None:
    with pytest.raises(MalformedEventError, match=message):
        _kafka.message(_record(**changes), {})
    raw = load("kafka-msk.json")
    raw["records"]["orders-0"][0].update(changes)
    app, seen = _app()
    with pytest.raises(MalformedEventError):
        polyserve_aws.handler(app)(raw, lambda_context)
    assert seen == []  # ordered: the bad first record stops the batch before the rest


def test_a_key_that_is_not_utf8_keeps_its_base64() -> None:
    key = base64.b64encode(b"\xff\x01").decode()
    assert _kafka.message(_record(key=key), {}).group_key == key
