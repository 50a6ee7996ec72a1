"""``@app.native()``: events no source recognises, handed over as the Lambda event."""

from __future__ import annotations

from typing import Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Context
from polyserve.errors import ConfigurationError, UnsupportedEventError


def test_an_unrecognised_event_reaches_the_native_handler(
    lambda_context: FakeLambdaContext,
) -> None:
    app = App("native")
    seen: list[tuple[Any, Context]] = []

    @app.native()
    def cognito(event: Any, ctx: Context) -> Any:
        seen.append((event, ctx))
        event["response"]["autoConfirmUser"] = True
        return event

    raw = load("cognito-pre-sign-up.json")
    answer = polyserve_aws.handler(app)(raw, lambda_context)
    assert answer is seen[0][0]  # returned unchanged, not serialised or wrapped
    assert seen[0][0] == raw
    assert answer["response"]["autoConfirmUser"] is True
    assert seen[0][1].provider == "aws"
    assert seen[0][1].invocation_id == lambda_context.aws_request_id


def test_a_recognised_event_never_reaches_it(lambda_context: FakeLambdaContext) -> None:
    app = App("native")
    calls: list[object] = []
    app.native()(calls.append)

    @app.queue("*")
    def anything(event: Any) -> None:
        pass

    answer = polyserve_aws.handler(app)(load("sqs-standard.json"), lambda_context)
    assert answer == {"batchItemFailures": []}
    assert calls == []


def test_provider_filter_and_errors(lambda_context: FakeLambdaContext) -> None:
    other = App("other")
    other.native("azure")(lambda event: "azure")
    with pytest.raises(UnsupportedEventError):
        polyserve_aws.handler(other)(load("ses-receipt.json"), lambda_context)

    app = App("native")

    @app.native("aws")
    def failing(event: Any) -> None:
        raise RuntimeError("retry me")

    with pytest.raises(RuntimeError, match="retry me"):
        polyserve_aws.handler(app)(load("ses-receipt.json"), lambda_context)
    with pytest.raises(ConfigurationError):
        app.native("aws")(lambda event: None)


@pytest.mark.parametrize("event", [None, "text", 3, {}])
def test_non_dict_events_are_handed_over_too(lambda_context: FakeLambdaContext, event: Any) -> None:
    app = App("native")
    app.native()(lambda raw: ("got", raw))
    assert polyserve_aws.handler(app)(event, lambda_context) == ("got", event)
