"""Trace context on Cloud Functions: the caller's trace, and the fields Cloud Logging correlates on.

Where the trace comes from, first found wins:

- HTTP: the W3C ``traceparent`` header (with ``tracestate``), else Google's
  ``X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1``.
- CloudEvents: the ``traceparent`` extension (the CloudEvents distributed tracing
  extension); for a Pub/Sub message, else the message attributes the Pub/Sub client
  libraries write when OpenTelemetry is on (``googclient_traceparent``), a plain
  ``traceparent`` attribute a producer set itself (``polyserve_gcp.outbound`` writes
  it), or the ``ce-traceparent`` attribute of a CloudEvent in binary mode.
- Pub/Sub push requests (the HTTP target's push path): the message attributes as
  above, else the request's headers.

A malformed value is ignored, never an error. Every log line of a traced invocation
carries ``logging.googleapis.com/trace`` (``projects/PROJECT/traces/TRACE_ID``),
``logging.googleapis.com/spanId`` and ``logging.googleapis.com/trace_sampled``, the
fields Cloud Logging uses to show logs beside their trace. The project comes from
``GOOGLE_CLOUD_PROJECT`` (or ``GCP_PROJECT``, ``GCLOUD_PROJECT``); without one only
``trace_id`` is logged.
"""

from __future__ import annotations

import os

from polyserve.tracing import from_cloud_trace, from_traceparent

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from polyserve.context import Context
    from polyserve.tracing import TraceContext

__all__ = ["log_fields", "project_id", "pubsub_trace", "trace_of"]

_PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
_PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "GCLOUD_PROJECT")
# The prefix the Pub/Sub client libraries put before OpenTelemetry's propagation keys.
_PUBSUB_PREFIX = "googclient_"


def trace_of(raw: Any) -> TraceContext | None:
    """The trace ``raw`` (a request or a CloudEvent) continues; never raises."""
    try:
        if hasattr(raw, "get_attributes"):
            return _of_cloudevent(raw)
        headers = getattr(raw, "headers", None)
        if headers is not None and hasattr(headers, "get"):
            return _of_headers(headers)
    except Exception:  # a trace is optional: an odd shape only loses it
        return None
    return None


def _of_headers(headers: Any) -> TraceContext | None:
    # Werkzeug's headers look names up case-insensitively.
    found = from_traceparent(headers.get("traceparent"), headers.get("tracestate"))
    return found if found is not None else from_cloud_trace(headers.get("x-cloud-trace-context"))


def _of_cloudevent(event: Any) -> TraceContext | None:
    attrs = event.get_attributes()
    found = from_traceparent(attrs.get("traceparent"), attrs.get("tracestate"))
    if found is not None or attrs.get("type") != _PUBSUB_PUBLISHED:
        return found
    data = event.get_data()
    message = data.get("message") if isinstance(data, dict) else None
    attributes = message.get("attributes") if isinstance(message, dict) else None
    if not isinstance(attributes, dict):
        return None
    return pubsub_trace(attributes)


def pubsub_trace(attributes: dict[str, Any]) -> TraceContext | None:
    """The trace a Pub/Sub message's attributes carry, or ``None``."""
    for prefix in (_PUBSUB_PREFIX, "", "ce-"):
        found = from_traceparent(
            attributes.get(prefix + "traceparent"), attributes.get(prefix + "tracestate")
        )
        if found is not None:
            return found
    return None


def project_id() -> str | None:
    """The Google Cloud project from the environment, or ``None``."""
    for variable in _PROJECT_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return value
    return None


def log_fields(context: Context) -> dict[str, Any]:
    """Cloud Logging's trace fields for the invocation's trace, when it has one and a project."""
    trace = context.trace
    project = project_id() if trace is not None else None
    if trace is None or project is None:
        return {}
    fields: dict[str, Any] = {
        "logging.googleapis.com/trace": f"projects/{project}/traces/{trace.trace_id}"
    }
    if trace.span_id is not None:
        fields["logging.googleapis.com/spanId"] = trace.span_id
    if trace.sampled is not None:
        fields["logging.googleapis.com/trace_sampled"] = trace.sampled
    return fields
