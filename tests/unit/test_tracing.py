"""Trace context: every platform's header format read into one form, and carried on."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyserve import App, CloudEvent, Context, Message, Trigger, tracing
from polyserve.tracing import TraceContext

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_traceparent() -> None:
    found = tracing.from_traceparent(f"00-{TRACE}-{SPAN}-01", "congo=t61rcWkgMzE")
    assert found == TraceContext(TRACE, SPAN, True, "traceparent", "congo=t61rcWkgMzE")
    assert found is not None
    assert found.traceparent == f"00-{TRACE}-{SPAN}-01"
    assert found.xray_id == "1-4bf92f35-77b34da6a3ce929d0e0e4736"
    # A later version may add fields; version 00 may not.
    assert tracing.from_traceparent(f"01-{TRACE}-{SPAN}-00-extra") is not None
    assert tracing.from_traceparent(f"00-{TRACE}-{SPAN}-00-extra") is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        7,
        "",
        "garbage",
        f"ff-{TRACE}-{SPAN}-01",  # version ff is invalid
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE[:-1]}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-zz",
        f"00-{TRACE.upper()}x-{SPAN}-01",
    ],
)
def test_malformed_traceparents_are_ignored(value: object) -> None:
    assert tracing.from_traceparent(value) is None


def test_xray_header() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    found = tracing.from_xray(header)
    assert found == TraceContext(
        "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", True, "xray"
    )
    assert tracing.from_xray("Root=1-5759e988-bd862e3fe1be46a994272793") == TraceContext(
        "5759e988bd862e3fe1be46a994272793", None, None, "xray"
    )
    for bad in ("Root=2-5759e988-bd862e3fe1be46a994272793", "Parent=53995c3f42cd8ad8", "Root="):
        assert tracing.from_xray(bad) is None


def test_google_cloud_trace_header() -> None:
    found = tracing.from_cloud_trace(f"{TRACE}/1;o=1")
    assert found == TraceContext(TRACE, "0000000000000001", True, "cloud-trace")
    assert tracing.from_cloud_trace(f"{TRACE}/notanumber") == TraceContext(
        TRACE, None, None, "cloud-trace"
    )
    assert tracing.from_cloud_trace("nothex/1") is None


def test_application_insights_request_id_and_cloudflare_ray() -> None:
    assert tracing.from_request_id(f"|{TRACE}.{SPAN}.") == TraceContext(
        TRACE, SPAN, None, "request-id"
    )
    assert tracing.from_request_id(TRACE) is None
    assert tracing.from_cf_ray("8a1b2c3d4e5f6789-IAD") == TraceContext(
        "8a1b2c3d4e5f6789", None, None, "cf-ray"
    )
    assert tracing.from_cf_ray("short-IAD") is None


def test_headers_prefer_traceparent_then_the_platforms_own() -> None:
    headers = {
        "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793",
        "traceparent": f"00-{TRACE}-{SPAN}-01",
    }
    found = tracing.from_headers(headers)
    assert found is not None
    assert found.source == "traceparent"
    del headers["traceparent"]
    found = tracing.from_headers(headers)
    assert found is not None
    assert found.source == "xray"
    assert tracing.from_headers({"traceparent": "broken"}) is None
    only_ray = tracing.from_headers(
        headers | {"cf-ray": "8a1b2c3d4e5f6789-IAD"}, formats=["cf-ray"]
    )
    assert only_ray is not None
    assert only_ray.source == "cf-ray"


@given(st.text(max_size=200))
def test_no_header_value_makes_a_parser_raise(value: str) -> None:
    for parse in (
        tracing.from_traceparent,
        tracing.from_xray,
        tracing.from_cloud_trace,
        tracing.from_request_id,
        tracing.from_cf_ray,
    ):
        found = parse(value)
        assert found is None or isinstance(found, TraceContext)


def test_the_logger_stamps_the_trace_and_the_adapters_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def cloud_fields(ctx: Context) -> dict[str, str]:
        assert ctx.trace is not None
        return {"logging.googleapis.com/trace": f"projects/p/traces/{ctx.trace.trace_id}"}

    trace = TraceContext(TRACE, SPAN, True)
    ctx = Context("gcp", invocation_id="i", trace=trace, log_fields=cloud_fields)
    assert ctx.trace_id == TRACE
    with caplog.at_level(logging.INFO, logger="polyserve"):
        ctx.logger.info("hello")
    line = json.loads(caplog.records[-1].getMessage())
    assert line["trace_id"] == TRACE
    assert line["logging.googleapis.com/trace"] == f"projects/p/traces/{TRACE}"
    assert Context("test").trace_id is None


def test_each_batch_record_continues_its_own_trace(caplog: pytest.LogCaptureFixture) -> None:
    app = App("t")
    seen: list[str | None] = []

    @app.queue("orders")
    def on_order(msg: Message, ctx: Context) -> None:
        seen.append(ctx.trace_id)
        ctx.logger.info("handled")

    other = "0af7651916cd43dd8448eb211c80319c"
    producers = {"1": TraceContext(TRACE, SPAN, True), "3": TraceContext(other, SPAN, True)}
    records = [Message(id="1"), Message(id="2"), Message(id="3")]
    batch_trace = TraceContext("11111111111111111111111111111111", SPAN, True)
    with caplog.at_level(logging.INFO, logger="polyserve"):
        app.handle_batch(
            Trigger.QUEUE, records, Context("test", trace=batch_trace),
            decode=lambda m: ("orders", m), item_id=lambda m: m.id,
            trace_of=lambda m: producers.get(m.id),
        )  # fmt: skip
    assert seen == [TRACE, batch_trace.trace_id, other]
    logged = [json.loads(r.getMessage())["trace_id"] for r in caplog.records]
    assert logged == seen


def test_a_cloudevent_continues_the_trace_in_its_extension() -> None:
    app = App("t")
    seen: list[str | None] = []

    @app.cloudevent("com.example.created")
    def created(event: CloudEvent, ctx: Context) -> None:
        seen.append(ctx.trace_id)

    event = CloudEvent(
        id="1", source="/s", type="com.example.created",
        extensions={"traceparent": f"00-{TRACE}-{SPAN}-01"},
    )  # fmt: skip
    app.handle_event(Trigger.CLOUDEVENT, "com.example.created", event, Context("test"))
    assert seen == [TRACE]


@pytest.mark.parametrize("around", [False, True], ids=["direct", "with-middleware"])
def test_a_failed_records_exception_handler_sees_its_own_trace(
    caplog: pytest.LogCaptureFixture, around: bool
) -> None:
    # A handler of the event alone is called without the pipeline around it; a record
    # that fails still gets its own context, as it does through a middleware.
    app = App("t")
    if around:
        app.middleware(lambda call, event, ctx: call(event))
    handled: list[tuple[str, str | None]] = []

    @app.exception_handler(KeyError)
    def missing(exc: Exception, event: Message, ctx: Context) -> None:
        handled.append((event.id, ctx.trace_id))

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        if msg.id == "2":
            raise KeyError("sku")
        if msg.id == "3":
            raise ValueError("no items")

    other = "0af7651916cd43dd8448eb211c80319c"
    producers = {"2": TraceContext(TRACE, SPAN, True), "3": TraceContext(other, SPAN, True)}
    with caplog.at_level(logging.INFO, logger="polyserve"):
        result = app.handle_batch(
            Trigger.QUEUE, [Message(id=str(i)) for i in range(1, 4)], Context("test"),
            decode=lambda m: ("orders", m), item_id=lambda m: m.id,
            trace_of=lambda m: producers.get(m.id),
        )  # fmt: skip
    assert result.succeeded == ("1", "2")
    assert result.failed_ids == ["3"]
    assert handled == [("2", TRACE)]
    [line] = [json.loads(r.getMessage()) for r in caplog.records]
    assert (line["item_id"], line["error_type"], line["error_function"]) == (
        "3", "ValueError", "on_order",
    )  # fmt: skip
