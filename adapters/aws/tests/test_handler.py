"""The entry point: recognising events, dispatch order, unsupported events, imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.support import EVENTS, FakeLambdaContext, load

import polyserve_aws
from polyserve import App
from polyserve.errors import PolyserveError, UnsupportedEventError
from polyserve_aws import (
    _alb,
    _apigateway,
    _dynamodb,
    _edge,
    _eventbridge,
    _handler,
    _kafka,
    _kinesis,
    _lattice,
    _s3,
    _sns,
    _sqs,
    _websocket,
    _window,
)

if TYPE_CHECKING:
    from types import ModuleType

    from polyserve_testkit.recorder import Recorder

# Which source recognises each of this adapter's samples (None: no source does).
EXPECTED_SOURCE: dict[str, ModuleType | None] = {
    "alb-multi.json": _alb,
    "alb-oidc.json": _alb,
    "alb-single.json": _alb,
    "apigw-http-jwt.json": _apigateway,
    "apigw-http-lambda-authorizer.json": _apigateway,
    "apigw-http-post.json": _apigateway,
    "apigw-rest-cognito.json": _apigateway,
    "apigw-rest-get.json": _apigateway,
    "apigw-rest-iam-cognito.json": _apigateway,
    "apigw-rest-lambda-authorizer.json": _apigateway,
    "apigw-rest-post-binary.json": _apigateway,
    "cloudwatch-logs.json": None,
    "cognito-pre-sign-up.json": None,
    "dynamodb-stream.json": _dynamodb,
    "dynamodb-window-final.json": _window,
    "edge-origin-request-body.json": _edge,
    "edge-origin-response.json": _edge,
    "edge-viewer-request.json": _edge,
    "edge-viewer-response.json": _edge,
    "eventbridge-custom.json": _eventbridge,
    "eventbridge-s3-object-created.json": _eventbridge,
    "eventbridge-scheduled-rule.json": _eventbridge,
    "eventbridge-scheduler.json": _eventbridge,
    "function-url-get.json": _apigateway,
    "function-url-iam.json": _apigateway,
    "kafka-msk.json": _kafka,
    "kafka-self-managed.json": _kafka,
    "kinesis.json": _kinesis,
    "kinesis-window.json": _window,
    "lattice-v1.json": _lattice,
    "lattice-v2.json": _lattice,
    "s3-delete.json": _s3,
    "s3-put.json": _s3,
    "scheduler-input.json": _eventbridge,
    "ses-receipt.json": None,
    "sns.json": _sns,
    "sqs-fifo.json": _sqs,
    "sqs-standard.json": _sqs,
    "websocket-connect.json": _websocket,
    "websocket-disconnect.json": _websocket,
    "websocket-message.json": _websocket,
}


def test_every_sample_is_listed() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED_SOURCE)


@pytest.mark.parametrize(("name", "source"), list(EXPECTED_SOURCE.items()))
def test_exactly_one_source_recognises_each_sample(name: str, source: ModuleType | None) -> None:
    raw = load(name)
    recognised = [s for s in _handler.sources() if s.matches(raw)]
    assert recognised == ([source] if source else [])


@pytest.mark.parametrize("name", ["cognito-pre-sign-up.json", "ses-receipt.json"])
def test_unrecognised_event_describes_what_arrived(
    recorder: Recorder, lambda_context: FakeLambdaContext, name: str
) -> None:
    with pytest.raises(UnsupportedEventError) as info:
        polyserve_aws.handler(recorder.app)(load(name), lambda_context)

    description = info.value.description
    assert description["keys"] == sorted(load(name))
    if name == "ses-receipt.json":
        assert description["Records[0].eventSource"] == "aws:ses"
    else:
        assert description["triggerSource"] == "PreSignUp_SignUp"
    assert info.value.status == 400
    assert recorder.seen == []


@pytest.mark.parametrize("event", [None, [], "text", 3, [{"Records": []}], {}, {"Records": []}])
def test_non_events_are_unsupported(
    recorder: Recorder, lambda_context: FakeLambdaContext, event: Any
) -> None:
    with pytest.raises(UnsupportedEventError) as info:
        polyserve_aws.handler(recorder.app)(event, lambda_context)
    if not isinstance(event, dict):
        assert info.value.description == {"type": type(event).__name__}


def test_handler_is_named_after_the_app() -> None:
    handler = polyserve_aws.handler(App("petstore"))
    assert handler.__name__ == "handler[petstore]"


def test_names_are_copied(lambda_context: FakeLambdaContext) -> None:
    app = App("names")
    seen: list[str] = []
    app.queue("orders")(lambda message: seen.append(message.id))
    names = {"adoptions": "orders"}
    handler = polyserve_aws.handler(app, names=names)
    names.clear()

    handler(load("sqs-standard.json"), lambda_context)

    assert len(seen) == 2


def test_exports() -> None:
    assert polyserve_aws.__all__ == sorted(polyserve_aws.__all__)
    for name in polyserve_aws.__all__:
        assert getattr(polyserve_aws, name) is not None
    assert sorted(dir(polyserve_aws)) == sorted(polyserve_aws.__all__)
    with pytest.raises(AttributeError):
        polyserve_aws.nothing  # noqa: B018 - the attribute access is the test


def test_polyserve_errors_share_a_base(lambda_context: FakeLambdaContext) -> None:
    with pytest.raises(PolyserveError):
        polyserve_aws.handler(App("x"))({"unknown": True}, lambda_context)


def test_handling_events_imports_no_heavy_library() -> None:
    samples = sorted(str(p) for p in EVENTS.glob("*.json"))
    script = textwrap.dedent(
        f"""
        import json, sys
        import polyserve_aws
        from polyserve import App
        app = App("cold")
        app.get("/pets/{{pet_id:int}}")(lambda pet_id: {{"id": pet_id}})
        handler = polyserve_aws.handler(app)

        class Ctx:
            aws_request_id = "r"
            function_name = "f"
            def get_remaining_time_in_millis(self):
                return 1000

        for path in {samples!r}:
            try:
                handler(json.load(open(path)), Ctx())
            except Exception:
                pass
        heavy = ("boto3", "botocore", "pydantic")
        print(json.dumps([m for m in heavy if m in sys.modules]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_one_handler_answers_events_of_every_kind_in_any_order(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    # The source of the last event is tried first; the next event may be of another kind.
    handler = polyserve_aws.handler(recorder.app)
    order = ["apigw-http-post.json", "sqs-standard.json", "alb-single.json",
             "sqs-standard.json", "apigw-http-post.json", "sns.json", "apigw-rest-get.json"]  # fmt: skip
    kinds = []
    for name in order:
        out = handler(load(name), lambda_context)
        kinds.append("batch" if isinstance(out, dict) and "batchItemFailures" in out else
                     "http" if isinstance(out, dict) and "statusCode" in out else "event")  # fmt: skip
    assert kinds == ["http", "batch", "http", "batch", "http", "event", "http"]
    with pytest.raises(UnsupportedEventError):
        handler(load("ses-receipt.json"), lambda_context)


def test_an_unrecognised_event_is_described_in_little_space(
    recorder: Recorder, lambda_context: FakeLambdaContext
) -> None:
    event = {"k" * 1_000_000: 1, "source": "\ud800" * 1_000_000, "x\x00": None}
    with pytest.raises(UnsupportedEventError) as info:
        polyserve_aws.handler(recorder.app)(event, lambda_context)
    assert len(str(info.value)) < 1_000
    assert info.value.description["source"] == "\ud800" * 100
