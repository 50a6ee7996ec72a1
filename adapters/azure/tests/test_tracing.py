"""Trace context on Azure: HTTP headers, the invocation's trace, message properties, and
``operation_Id`` on every log line."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from adapters.azure.tests.support import (
    InvocationContext,
    functions,
    http_request,
    load_native,
    service_bus_message,
)

import polyserve_azure
from polyserve import App, CloudEvent, Context, HttpRequest, Message, Trigger
from polyserve_azure import _eventhub, _tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
HOST_TRACE = "0af7651916cd43dd8448eb211c80319c"


class TracedInvocation(InvocationContext):
    """An invocation whose host started a trace, as ``context.trace_context`` gives it."""

    @property
    def trace_context(self) -> Any:
        return SimpleNamespace(
            trace_parent=f"00-{HOST_TRACE}-b7ad6b7169203331-01", trace_state="", attributes={}
        )


def _app(seen: list[str | None]) -> App:
    app = App("traced")

    def on_request(request: HttpRequest, ctx: Context) -> str:
        seen.append(ctx.trace_id)
        ctx.logger.info("handled")
        return "ok"

    def on_message(msg: Message, ctx: Context) -> None:
        seen.append(ctx.trace_id)

    app.add_route("/{rest:path}", on_request, ("GET",))
    app.register(Trigger.QUEUE, "jobs", on_message, service="servicebus")
    return app


def _get(headers: dict[str, str], native: InvocationContext) -> list[str | None]:
    seen: list[str | None] = []
    fn = functions(polyserve_azure.function_app(_app(seen)))["http"]
    request = http_request("GET", "https://example.net/api/x", headers=headers)
    response = fn.get_user_function()(request, native)
    assert response.status_code == 200
    return seen


def test_an_http_traceparent_is_the_trace() -> None:
    assert _get({"traceparent": PARENT}, TracedInvocation()) == [TRACE]


def test_an_application_insights_request_id_is_read_when_there_is_no_traceparent() -> None:
    seen = _get({"Request-Id": f"|{TRACE}.00f067aa0ba902b7."}, InvocationContext())
    assert seen == [TRACE]


def test_without_headers_the_invocation_trace_is_continued() -> None:
    assert _get({}, TracedInvocation()) == [HOST_TRACE]


def test_a_malformed_traceparent_is_ignored() -> None:
    assert _get({"traceparent": "00-nothex-zz-01"}, TracedInvocation()) == [HOST_TRACE]
    assert _get({"traceparent": "garbage"}, InvocationContext()) == [None]


def test_log_lines_carry_the_operation_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        _get({"traceparent": PARENT}, InvocationContext())
    lines = [r.getMessage() for r in caplog.records if "handled" in r.getMessage()]
    assert lines, "the handler logged nothing"
    line = json.loads(lines[-1])
    assert line["operation_Id"] == TRACE
    assert line["trace_id"] == TRACE


@pytest.mark.parametrize(
    "properties",
    [
        {"Diagnostic-Id": PARENT},
        {"Diagnostic-Id": f"|{TRACE}.00f067aa0ba902b7."},
        {"traceparent": PARENT},
    ],
    ids=["diagnostic-id-w3c", "diagnostic-id-request-id", "traceparent"],
)
def test_a_service_bus_message_continues_its_producer_trace(properties: dict[str, str]) -> None:
    seen: list[str | None] = []
    fn = functions(polyserve_azure.function_app(_app(seen)))["servicebus_jobs"]
    fn.get_user_function()(service_bus_message(b"{}", properties=properties), TracedInvocation())
    assert seen == [TRACE]


def test_a_service_bus_message_without_one_continues_the_invocation() -> None:
    seen: list[str | None] = []
    fn = functions(polyserve_azure.function_app(_app(seen)))["servicebus_jobs"]
    msg = service_bus_message(b"{}", properties={"Diagnostic-Id": "not a trace"})
    fn.get_user_function()(msg, TracedInvocation())
    assert seen == [HOST_TRACE]


def test_each_event_hubs_event_has_its_own_producer_trace() -> None:
    other = "11111111111111111111111111111111"
    metadata = {
        "PropertiesArray": [
            {"Diagnostic-Id": PARENT},
            {},
            {"traceparent": f"00-{other}-00f067aa0ba902b7-01"},
        ]
    }
    events = [SimpleNamespace(metadata=metadata) for _ in range(3)]
    found = [_eventhub.trace_of(event, i) for i, event in enumerate(events)]
    assert [None if t is None else t.trace_id for t in found] == [TRACE, None, other]
    assert _eventhub.trace_of(SimpleNamespace(), 0) is None


def test_an_event_grid_cloudevent_continues_its_traceparent_extension() -> None:
    app = App("grid")
    seen: list[str | None] = []

    @app.cloudevent("*")
    def on_event(event: CloudEvent, ctx: Context) -> None:
        seen.append(ctx.trace_id)

    fn = functions(polyserve_azure.function_app(app))["eventgrid"]
    # An invocation without a host trace: the trace can only be the sample's extension.
    fn.get_user_function()(load_native("eventgrid-cloudevent.json"), InvocationContext("inv-1"))
    assert seen == ["0af7651916cd43dd8448eb211c80319c"]


def test_an_invocation_without_a_trace_context_has_none() -> None:
    assert _tracing.invocation_trace(None) is None
    assert _tracing.invocation_trace(SimpleNamespace(trace_context=None)) is None
    assert _tracing.properties_trace(None) is None
