"""Trace context on Lambda: the caller's trace reaches Context.trace_id and every log line."""

from __future__ import annotations

import json
import logging

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Context, Message

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
XRAY_TRACE = "5759e988bd862e3fe1be46a994272793"


def _tracing_app(seen: list[str | None]) -> App:
    app = App("traced")

    @app.get("/{rest:path}")
    def any_path(rest: str, ctx: Context) -> str:
        seen.append(ctx.trace_id)
        ctx.logger.info("handled")
        return "ok"

    @app.queue("adoptions")
    def on_message(msg: Message, ctx: Context) -> None:
        seen.append(ctx.trace_id)
        ctx.logger.info("handled")

    return app


@pytest.mark.parametrize(
    ("name", "headers", "expected"),
    [
        ("apigw-http-post.json", {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}, TRACE),
        ("apigw-rest-get.json", {"X-Amzn-Trace-Id": XRAY}, XRAY_TRACE),
        ("apigw-rest-get.json", {"traceparent": "not a trace"}, None),
    ],
)
def test_http_requests_continue_the_callers_trace(
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    headers: dict[str, str],
    expected: str | None,
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    seen: list[str | None] = []
    raw = load(name)
    raw["headers"] = {**(raw.get("headers") or {}), **headers}
    raw.pop("multiValueHeaders", None)
    raw["requestContext"]["http"] = raw["requestContext"].get("http", {}) | {"method": "GET"}
    raw["httpMethod"] = "GET"
    with caplog.at_level(logging.INFO, logger="polyserve"):
        out = polyserve_aws.handler(_tracing_app(seen))(raw, lambda_context)
    assert out["statusCode"] == 200
    assert seen == [expected]
    line = json.loads(caplog.records[-1].getMessage())
    assert line.get("trace_id") == expected
    if expected is not None:
        assert line["xray_trace_id"] == f"1-{expected[:8]}-{expected[8:]}"


def test_without_a_header_the_invocations_xray_trace_is_used(
    lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY)
    seen: list[str | None] = []
    polyserve_aws.handler(_tracing_app(seen))(load("function-url-get.json"), lambda_context)
    assert seen == [XRAY_TRACE]


def test_each_sqs_record_continues_its_producers_trace(
    lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    seen: list[str | None] = []
    raw = load("sqs-standard.json")
    raw["Records"][0]["attributes"]["AWSTraceHeader"] = XRAY
    polyserve_aws.handler(_tracing_app(seen))(raw, lambda_context)
    assert seen == [XRAY_TRACE, None]


def _attribute(value: str) -> dict[str, str]:
    return {"stringValue": value, "dataType": "String"}


@pytest.mark.parametrize(
    ("traceparent", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),  # the W3C attribute wins
        ("not a trace", XRAY_TRACE),  # a malformed one leaves the X-Ray header
    ],
)
def test_an_sqs_records_traceparent_attribute_comes_before_its_xray_header(
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    traceparent: str,
    expected: str,
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    seen: list[str | None] = []
    raw = load("sqs-standard.json")
    raw["Records"][0]["attributes"]["AWSTraceHeader"] = XRAY
    raw["Records"][0]["messageAttributes"]["traceparent"] = _attribute(traceparent)
    raw["Records"][1]["messageAttributes"] = {"traceparent": _attribute(traceparent)}
    polyserve_aws.handler(_tracing_app(seen))(raw, lambda_context)
    assert seen == [expected, TRACE if expected == TRACE else None]


def test_an_sns_notification_continues_its_traceparent_attribute(
    lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY)
    app = App("sns")
    seen: list[str | None] = []

    @app.topic("pet-alerts")
    def alert(msg: Message, ctx: Context) -> None:
        seen.append(ctx.trace_id)

    raw = load("sns.json")
    polyserve_aws.handler(app)(raw, lambda_context)
    attributes = raw["Records"][0]["Sns"]["MessageAttributes"]
    attributes["traceparent"] = {"Type": "String", "Value": f"00-{TRACE}-00f067aa0ba902b7-01"}
    polyserve_aws.handler(app)(raw, lambda_context)
    # Without the attribute, the invocation's X-Ray trace (SNS propagates the publisher's).
    assert seen == [XRAY_TRACE, TRACE]
