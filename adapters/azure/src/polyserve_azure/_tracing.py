"""Trace context on Azure Functions, and the field Application Insights correlates on.

Where a trace comes from, first found wins:

- HTTP: the request's ``traceparent`` (W3C, with ``tracestate``), else Application
  Insights' legacy ``Request-Id`` (``|<trace id>.<span id>.``);
- Service Bus: the message's ``Diagnostic-Id`` application property (a ``traceparent``
  from current SDKs, a ``Request-Id`` from older ones; a ``tracestate`` property goes
  with it), else a ``traceparent`` property;
- Storage Queue: the ``traceparent`` of a ``polyserve.outbound`` envelope (``_envelope``);
- Event Hubs: each event's ``Diagnostic-Id`` / ``traceparent`` property (each record's
  context continues its own producer's trace);
- Event Grid CloudEvents: the ``traceparent`` extension (read by core);
- any invocation, else: the trace context the Functions host gives the invocation
  (``context.trace_context.trace_parent``), which is the host's own request span.

Every log line of a traced invocation carries ``operation_Id`` (the trace id, 32 hex
digits), the field Application Insights' ``traces`` and ``requests`` tables join on.
"""

from __future__ import annotations

from polyserve.tracing import from_request_id, from_traceparent

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from polyserve.context import Context
    from polyserve.tracing import TraceContext

__all__ = ["http_trace", "invocation_trace", "log_fields", "message_trace", "properties_trace"]


def invocation_trace(native: Any) -> TraceContext | None:
    """The trace the host gives the invocation (``azure.functions.Context.trace_context``)."""
    trace = getattr(native, "trace_context", None)
    if trace is None:
        return None
    return from_traceparent(
        getattr(trace, "trace_parent", None), getattr(trace, "trace_state", None)
    )


def http_trace(source: tuple[Mapping[str, str], Any]) -> TraceContext | None:
    """``source`` is (the request's lower-case headers, the invocation context)."""
    headers, native = source
    found = from_traceparent(headers.get("traceparent"), headers.get("tracestate"))
    if found is None:
        found = from_request_id(headers.get("request-id"))
    return found if found is not None else invocation_trace(native)


def properties_trace(properties: object) -> TraceContext | None:
    """The producer's trace in a message's application properties; never raises."""
    if not hasattr(properties, "get"):
        return None
    diagnostic = properties.get("Diagnostic-Id")
    found = from_traceparent(diagnostic, properties.get("tracestate")) or from_request_id(
        diagnostic
    )
    if found is None:
        found = from_traceparent(properties.get("traceparent"), properties.get("tracestate"))
    return found


def message_trace(source: tuple[object, Any]) -> TraceContext | None:
    """``source`` is (the message's application properties, the invocation context)."""
    properties, native = source
    found = properties_trace(properties)
    return found if found is not None else invocation_trace(native)


def log_fields(context: Context) -> dict[str, str]:
    """``operation_Id``, Application Insights' correlation field, for a traced invocation."""
    trace_id = context.trace_id
    return {} if trace_id is None else {"operation_Id": trace_id}
