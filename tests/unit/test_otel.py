"""polyserve.otel: a span per invocation, checked with the SDK's in-memory exporter, also
through each cloud's real entry point (the adapters' property-test codecs)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from polyserve import App, Context, Headers, HttpRequest, Message, Trigger
from polyserve.otel import instrument
from polyserve.tracing import TraceContext, from_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def app(exporter: InMemorySpanExporter) -> App:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App("shop")
    instrument(app, tracer_provider=provider)

    @app.get("/pets/{pet_id:int}")
    def pet(pet_id: int) -> dict[str, int]:
        if pet_id == 0:
            raise ValueError("no pet zero")
        return {"id": pet_id}

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        if msg.body == b"bad":
            raise RuntimeError("cannot handle")

    return app


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def test_an_http_request_is_a_server_span_continuing_the_callers_trace(
    app: App, exporter: InMemorySpanExporter
) -> None:
    headers = Headers({"traceparent": f"00-{TRACE}-{SPAN}-01"})
    ctx = Context("aws", invocation_id="inv-7", function_name="shop-fn", is_cold_start=True,
                  trace=from_headers(headers))  # fmt: skip
    response = app.handle_http(HttpRequest("GET", "/pets/3", headers=headers), ctx)
    assert response.status == 200
    span = _only(exporter)
    assert span.name == "GET /pets/{pet_id:int}"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == SPAN
    attributes = dict(span.attributes or {})
    assert attributes == {
        "faas.trigger": "http", "faas.invocation_id": "inv-7", "faas.coldstart": True,
        "faas.name": "shop-fn", "cloud.provider": "aws", "http.request.method": "GET",
        "url.path": "/pets/3", "http.response.status_code": 200,
        "http.route": "/pets/{pet_id:int}",
    }  # fmt: skip


def test_a_500_marks_the_span_as_failed(app: App, exporter: InMemorySpanExporter) -> None:
    assert app.handle_http(HttpRequest("GET", "/pets/0"), Context("gcp")).status == 500
    span = _only(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.parent is None  # no incoming trace: a new one


def test_a_message_is_a_consumer_span_and_its_failure_is_recorded(
    app: App, exporter: InMemorySpanExporter
) -> None:
    producer = TraceContext(TRACE, SPAN, True, "xray")
    records = [Message(id="m1", body=b"ok", source="orders"),
               Message(id="m2", body=b"bad", source="orders")]  # fmt: skip
    result = app.handle_batch(
        Trigger.QUEUE, records, Context("azure"), decode=lambda m: ("orders", m),
        item_id=lambda m: m.id, trace_of=lambda m: producer if m.id == "m1" else None,
    )  # fmt: skip
    assert result.failed_ids == ["m2"]
    first, second = exporter.get_finished_spans()
    assert first.kind is SpanKind.CONSUMER
    assert first.attributes is not None
    assert first.attributes["faas.trigger"] == "pubsub"
    assert first.attributes["messaging.message.id"] == "m1"
    assert format(first.context.trace_id, "032x") == TRACE
    assert second.status.status_code is StatusCode.ERROR
    assert [e.name for e in second.events] == ["exception"]


def test_async_entry_points_are_traced_too(app: App, exporter: InMemorySpanExporter) -> None:
    async def call() -> int:
        response = await app.handle_http_async(HttpRequest("GET", "/pets/1"), Context("local"))
        return response.status

    assert asyncio.run(call()) == 200
    assert _only(exporter).name == "GET /pets/{pet_id:int}"


def _codecs(kind: str) -> list[tuple[str, Any]]:
    found = []
    for provider in ("aws", "azure", "gcp", "cloudflare"):
        module: Any = importlib.import_module(f"adapters.{provider}.tests.codecs")
        found += [(provider, codec) for codec in getattr(module, kind)]
    return found


_HTTP = _codecs("HTTP_CODECS")
_MESSAGES = _codecs("MESSAGE_CODECS")


def _instrumented(exporter: InMemorySpanExporter) -> App:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App("clouds")
    instrument(app, tracer_provider=provider)

    @app.route("/echo/{rest:path}", ["GET"])
    def echo(rest: str) -> str:
        return rest

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        return None

    return app


@pytest.mark.parametrize(("provider", "codec"), _HTTP, ids=[c.name for _, c in _HTTP])
def test_every_clouds_http_entry_point_opens_one_span_continuing_the_callers_trace(
    provider: str, codec: Any, exporter: InMemorySpanExporter
) -> None:
    app = _instrumented(exporter)
    headers = Headers({"traceparent": f"00-{TRACE}-{SPAN}-01"})
    request = HttpRequest("GET", "/echo/x", headers=headers, request_id="req-1")
    assert codec.call(app, request).status == 200
    span = _only(exporter)
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == SPAN
    attributes = dict(span.attributes or {})
    assert attributes["cloud.provider"] == provider
    assert attributes["faas.trigger"] == "http"
    assert attributes["http.route"] == "/echo/{rest:path}"
    assert isinstance(attributes["faas.invocation_id"], str)
    assert attributes["faas.invocation_id"]
    assert isinstance(attributes["faas.coldstart"], bool)


@pytest.mark.parametrize(("provider", "codec"), _MESSAGES, ids=[c.name for _, c in _MESSAGES])
def test_every_clouds_message_delivery_opens_one_consumer_span(
    provider: str, codec: Any, exporter: InMemorySpanExporter
) -> None:
    app = _instrumented(exporter)
    sent = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    codec.call(app, Message(id="m-1", body=b"{}", source="orders", enqueued_at=sent))
    span = _only(exporter)
    assert span.kind is SpanKind.CONSUMER
    attributes = dict(span.attributes or {})
    assert attributes["cloud.provider"] == provider
    assert attributes["faas.trigger"] == "pubsub"
    assert attributes["messaging.destination.name"] == "orders"
