"""Trace context on Lambda: the caller's trace, and the field CloudWatch logs correlate on.

For an HTTP event, the request's ``traceparent`` (W3C), else its ``X-Amzn-Trace-Id``;
for an SNS notification, its ``traceparent`` message attribute; for an EventBridge event
whose ``detail`` is a CloudEvent, its ``traceparent`` extension; for any event, else the
invocation's X-Ray trace, which the runtime puts in the ``_X_AMZN_TRACE_ID`` environment
variable for each invocation (it is read then, never at import).

Each SQS record's handler continues its own producer's trace: the ``traceparent``
message attribute, else the ``AWSTraceHeader`` system attribute. The W3C attribute comes
first everywhere because it is the trace the producer's code sent the message in, which
``polyserve_aws.outbound`` writes; the X-Ray header is the one AWS recorded the send
in, which may be a Lambda segment of another trace. Both name the same trace when
polyserve sent the message with a W3C trace id that X-Ray can hold.

Every log line of a traced invocation carries ``xray_trace_id`` in X-Ray's form
(``1-5759e988-bd862e3fe1be46a994272793``), the field X-Ray and CloudWatch use to put
logs beside traces.
"""

from __future__ import annotations

import os

from polyserve.tracing import from_traceparent, from_xray

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from polyserve.context import Context
    from polyserve.tracing import TraceContext

__all__ = ["log_fields", "trace_of"]


def trace_of(event: Any) -> TraceContext | None:
    """The trace ``event`` continues; never raises."""
    if not isinstance(event, dict):
        return from_xray(os.environ.get("_X_AMZN_TRACE_ID"))
    headers = _headers(event)
    found = from_traceparent(headers.get("traceparent"), headers.get("tracestate"))
    if found is None:
        found = from_xray(headers.get("x-amzn-trace-id"))
    if found is None and not headers:
        found = _carried(event)
    if found is None:
        found = from_xray(os.environ.get("_X_AMZN_TRACE_ID"))
    return found


def _carried(event: dict[str, Any]) -> TraceContext | None:
    # The W3C trace a producer wrote into the event itself: an SNS notification's
    # traceparent attribute, an EventBridge CloudEvent's traceparent extension.
    records = event.get("Records")
    if isinstance(records, list):
        if len(records) == 1 and isinstance(records[0], dict) and "Sns" in records[0]:
            from polyserve_aws._sns import producer_trace

            return producer_trace(records[0])
        return None
    detail = event.get("detail")
    if (
        isinstance(detail, dict)
        and "specversion" in detail
        and detail.get("type") == event.get("detail-type")
        and detail.get("source") == event.get("source")
    ):
        return from_traceparent(detail.get("traceparent"), detail.get("tracestate"))
    return None


def _headers(event: dict[str, Any]) -> Mapping[str, Any]:
    # HTTP events carry lower-case names (payload 2.0) or the client's (payload 1.0,
    # ALB); only the three trace headers are looked for.
    # VPC Lattice v2 lists each header's values; Lambda@Edge keeps CloudFront's request,
    # whose headers are lists of {"key", "value"} under lower-case names.
    headers = event.get("headers")
    if not isinstance(headers, dict):
        headers = event.get("multiValueHeaders")
    if not isinstance(headers, dict):
        headers = _edge_headers(event)
    found: dict[str, Any] = {}
    for name, value in headers.items():
        if isinstance(name, str):
            lower = name.lower()
            if lower in ("traceparent", "tracestate", "x-amzn-trace-id"):
                found[lower] = _last(value)
    return found


def _edge_headers(event: dict[str, Any]) -> dict[str, Any]:
    records = event.get("Records")
    if not isinstance(records, list) or len(records) != 1 or not isinstance(records[0], dict):
        return {}
    cf = records[0].get("cf")
    request = cf.get("request") if isinstance(cf, dict) else None
    headers = request.get("headers") if isinstance(request, dict) else None
    return headers if isinstance(headers, dict) else {}


def _last(value: Any) -> Any:
    """A header's value: the last of a list of values, or of CloudFront's {"value"} items."""
    if isinstance(value, list):
        if not value:
            return None
        value = value[-1]
    if isinstance(value, dict):
        return value.get("value")
    return value


def log_fields(context: Context) -> dict[str, str]:
    """``xray_trace_id`` for the invocation's trace, when it has a W3C-compatible id."""
    trace = context.trace
    xray = None if trace is None else trace.xray_id
    return {} if xray is None else {"xray_trace_id": xray}
