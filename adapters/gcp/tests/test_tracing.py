"""Trace context on GCP: where it is read from, and the fields Cloud Logging correlates on."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import flask
import pytest
from cloudevents.http import CloudEvent

import polyserve_gcp
from polyserve import App, Context, HttpRequest, Message
from polyserve_gcp import _tracing
from polyserve_gcp._context import make_context

FLASK = flask.Flask(__name__)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"


def http_trace(headers: dict[str, str]) -> Context:
    app = App("traced")
    seen: list[Context] = []

    @app.get("/")
    def index(request: HttpRequest, ctx: Context) -> str:
        seen.append(ctx)
        ctx.logger.info("handled")
        return "ok"

    with FLASK.test_request_context("/", headers=headers):
        response = polyserve_gcp.http(app)(flask.request)
    assert response.status_code == 200
    return seen[0]


def test_traceparent_header_wins_over_cloud_trace_context() -> None:
    ctx = http_trace({"traceparent": TRACEPARENT, "X-Cloud-Trace-Context": f"{'1' * 32}/1;o=0"})
    assert ctx.trace_id == TRACE
    assert ctx.trace is not None
    assert ctx.trace.span_id == SPAN
    assert ctx.trace.sampled is True


def test_cloud_trace_context_header() -> None:
    ctx = http_trace({"X-Cloud-Trace-Context": f"{TRACE.upper()}/123;o=1"})
    assert ctx.trace is not None
    assert ctx.trace_id == TRACE
    assert ctx.trace.span_id == f"{123:016x}"
    assert ctx.trace.source == "cloud-trace"


@pytest.mark.parametrize(
    "headers",
    [{}, {"traceparent": "garbage"}, {"X-Cloud-Trace-Context": "nothex/1"}, {"traceparent": ""}],
)
def test_missing_or_malformed_trace_is_none(headers: dict[str, str]) -> None:
    assert http_trace(headers).trace_id is None


def test_log_lines_carry_cloud_logging_trace_fields(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "shop-prod")
    with caplog.at_level(logging.INFO, logger="polyserve"):
        http_trace({"traceparent": TRACEPARENT})
    lines = [json.loads(r.getMessage()) for r in caplog.records if "handled" in r.getMessage()]
    assert len(lines) == 1
    line = lines[0]
    assert line["trace_id"] == TRACE
    assert line["logging.googleapis.com/trace"] == f"projects/shop-prod/traces/{TRACE}"
    assert line["logging.googleapis.com/spanId"] == SPAN
    assert line["logging.googleapis.com/trace_sampled"] is True


def test_without_a_project_only_trace_id_is_logged() -> None:
    ctx = make_context(App("a"), "i", 60, None)
    ctx.trace_from(_tracing.trace_of, CloudEvent(_attrs(traceparent=TRACEPARENT), None))
    assert ctx.trace_id == TRACE
    assert _tracing.log_fields(ctx) == {}


def test_untraced_invocation_has_no_trace_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCP_PROJECT", "p")
    assert _tracing.log_fields(make_context(App("a"), "i", 60, object())) == {}


def _attrs(**extra: Any) -> dict[str, Any]:
    return {"type": "com.example.thing", "source": "//example/x", "id": "e-1", **extra}


def test_cloudevent_traceparent_extension() -> None:
    app = App("traced")
    seen: list[Context] = []

    @app.cloudevent("com.example.thing")
    def on_thing(event: object, ctx: Context) -> None:
        seen.append(ctx)

    polyserve_gcp.cloudevent(app)(
        CloudEvent(_attrs(traceparent=TRACEPARENT, tracestate="k=v"), {"a": 1})
    )
    assert seen[0].trace_id == TRACE
    assert seen[0].trace is not None
    assert seen[0].trace.tracestate == "k=v"


def _pubsub_event(attributes: dict[str, str], **extra: Any) -> CloudEvent:
    data = {
        "subscription": "projects/p/subscriptions/orders-sub",
        "message": {
            "data": base64.b64encode(b"{}").decode(),
            "messageId": "m-1",
            "publishTime": "2026-01-02T03:04:05Z",
            "attributes": attributes,
        },
    }
    return CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/p/topics/orders",
            "id": "m-1",
            **extra,
        },
        data,
    )


def _pubsub_trace(event: CloudEvent) -> Context:
    app = App("traced")
    seen: list[Context] = []

    @app.queue("orders")
    def on_order(message: Message, ctx: Context) -> None:
        seen.append(ctx)

    polyserve_gcp.cloudevent(app)(event)
    return seen[0]


@pytest.mark.parametrize("key", ["googclient_traceparent", "traceparent"])
def test_pubsub_message_attributes(key: str) -> None:
    assert _pubsub_trace(_pubsub_event({key: TRACEPARENT})).trace_id == TRACE


def test_cloudevent_extension_wins_over_message_attributes() -> None:
    other = f"00-{'2' * 32}-{SPAN}-00"
    event = _pubsub_event({"googclient_traceparent": other}, traceparent=TRACEPARENT)
    assert _pubsub_trace(event).trace_id == TRACE


def test_malformed_pubsub_attribute_is_ignored() -> None:
    assert _pubsub_trace(_pubsub_event({"googclient_traceparent": "00-xyz"})).trace_id is None


def test_reader_never_raises_on_odd_objects() -> None:
    class Broken:
        def get_attributes(self) -> dict[str, Any]:
            raise RuntimeError("boom")

    assert _tracing.trace_of(Broken()) is None
    assert _tracing.trace_of(None) is None


def _push_trace(attributes: dict[str, str], headers: dict[str, str]) -> str | None:
    app = App("traced")
    seen: list[str | None] = []

    @app.queue("orders")
    def on_order(message: Message, ctx: Context) -> None:
        seen.append(ctx.trace_id)

    envelope = {
        "subscription": "projects/p/subscriptions/orders-sub",
        "message": {"data": base64.b64encode(b"{}").decode(), "messageId": "m-1",
                    "publishTime": "2026-01-02T03:04:05Z", "attributes": attributes},
    }  # fmt: skip
    with FLASK.test_request_context(
        "/_pubsub/orders", method="POST", data=json.dumps(envelope), headers=headers
    ):
        response = polyserve_gcp.http(app)(flask.request)
    assert response.status_code == 204
    return seen[0]


def test_a_push_delivery_continues_its_messages_producer_trace() -> None:
    other = f"00-{'2' * 32}-{SPAN}-01"
    assert _push_trace({"googclient_traceparent": TRACEPARENT}, {"traceparent": other}) == TRACE
    # Without a trace in the message, the push request's own.
    assert _push_trace({}, {"traceparent": other}) == "2" * 32
    assert _push_trace({"googclient_traceparent": "00-xyz"}, {}) is None
