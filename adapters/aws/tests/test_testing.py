"""polyserve_aws.testing: every built event parses as the conformance rules say, and
has the shape of the samples shipped in ``tests/events``; the test client's AWS mode."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests import test_conformance as conformance
from adapters.aws.tests.support import EVENTS

import polyserve_aws
from polyserve import App, Message
from polyserve.testing import TestClient
from polyserve_aws.testing import BUILDERS, build

if TYPE_CHECKING:
    from pathlib import Path

# The shipped sample each kind is shaped like.
_SAMPLES = {
    "http_api": "apigw-http-post.json",
    "function_url": "function-url-get.json",
    "rest_api": "apigw-rest-get.json",
    "alb": "alb-single.json",
    "sqs": "sqs-standard.json",
    "sqs_fifo": "sqs-fifo.json",
    "sns": "sns.json",
    "s3": "s3-put.json",
    "eventbridge": "eventbridge-custom.json",
    "schedule": "eventbridge-scheduled-rule.json",
    "scheduler": "eventbridge-scheduler.json",
    "dynamodb": "dynamodb-stream.json",
    "kinesis": "kinesis.json",
    "kinesis_window": "kinesis-window.json",
    "lattice": "lattice-v2.json",
    "edge": "edge-viewer-request.json",
    "websocket": "websocket-message.json",
}


def _shape(event: dict[str, Any]) -> tuple[set[str], set[str]]:
    records = event.get("Records")
    return set(event), set(records[0]) if records else set()


def test_every_kind_has_a_sample() -> None:
    assert set(_SAMPLES) == set(BUILDERS)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_built_event_conforms(kind: str, tmp_path: Path) -> None:
    event = build(kind)
    sample = json.loads((EVENTS / _SAMPLES[kind]).read_text())
    assert conformance.kind_of(event) == conformance.kind_of(sample)
    ours, theirs = _shape(event), _shape(sample)
    assert ours[0] <= theirs[0] | {"body", "cookies"}
    assert ours[1] <= theirs[1]
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(event))
    conformance.test_sample_conforms(path)


def test_overrides_apply_and_unknown_ones_are_rejected() -> None:
    event = build("sqs", body={"id": 3}, queue="orders", attempt=2)
    (record,) = event["Records"]
    assert json.loads(record["body"]) == {"id": 3}
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["eventSourceARN"].endswith(":orders")
    with pytest.raises(TypeError, match=r"unknown override.*qeueu.*known: body"):
        build("sqs", qeueu="orders")
    with pytest.raises(TypeError, match=r"unknown override.*colour"):
        build("function_url", colour="red")
    with pytest.raises(KeyError, match="unknown AWS event kind 'sqs2'"):
        build("sqs2")


def test_client_through_the_lambda_handler() -> None:
    app = App("t")
    got: list[Any] = []

    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int) -> dict[str, int]:
        return {"id": pet_id}

    @app.queue("orders")
    def orders(msg: Message) -> None:
        got.append(msg.json())
        if msg.json().get("fail"):
            raise ValueError("boom")

    client = TestClient(app, provider="aws")
    response = client.get("/pets/4", headers={"x-a": "1"}, cookies={"s": "1"})
    assert response.json() == {"id": 4}
    assert response.native["statusCode"] == 200
    assert response.native["headers"]["content-type"] == "application/json"
    assert client.get("/nope").native["statusCode"] == 404
    assert client.queue_native("orders", {"n": 1}) == {"batchItemFailures": []}
    failed = client.queue_native("orders", {"fail": True}, message_id="m-9")
    assert failed == {"batchItemFailures": [{"itemIdentifier": "m-9"}]}
    assert got == [{"n": 1}, {"fail": True}]


def test_binary_sqs_and_sns_bodies_reach_the_handler_as_bytes() -> None:
    from polyserve_aws.testing import LambdaContext, sns, sqs

    app = App("bytes")
    seen: list[bytes] = []

    @app.queue("orders")
    @app.topic("alerts")
    def consume(message: Message) -> None:
        seen.append(message.body)
        assert "content-transfer-encoding" not in message.attributes

    handler = polyserve_aws.handler(app)
    assert handler(sqs(b"\x00\xff bytes"), LambdaContext()) == {"batchItemFailures": []}
    handler(sns(b"\xfe\xff"), LambdaContext())
    assert seen == [b"\x00\xff bytes", b"\xfe\xff"]
