"""OpenTelemetry: one span per invocation, with the FaaS semantic conventions.

``instrument(app)`` adds a middleware that opens a span around every invocation,
HTTP request or event, on every cloud::

    from polyserve.otel import instrument

    instrument(app)  # the global tracer provider, or tracer_provider=...

The span continues the caller's trace (``Context.trace``: ``traceparent``, X-Ray,
Google's trace header, a message's producer trace) and carries:

========================  =======================================================
``faas.trigger``          ``http``, ``pubsub`` (queues, topics), ``datasource``
                          (storage, streams), ``timer`` (schedules), ``other``
``faas.invocation_id``    ``Context.invocation_id``
``faas.coldstart``        ``Context.is_cold_start``
``faas.name``             ``Context.function_name``
``cloud.provider``        ``Context.provider`` (``aws``, ``azure``, ``gcp``, ...)
HTTP                      ``http.request.method``, ``url.path``, ``http.route``,
                          ``http.response.status_code``; the span is named
                          ``"{method} {route}"``
messages                  ``messaging.message.id``, ``messaging.destination.name``
========================  =======================================================

An exception is recorded on the span and sets its status to error, as does an
HTTP response with a 5xx status. The OpenTelemetry API is imported when
``instrument`` is called, never by importing polyserve: install
``polyserve-core[otel]`` (and an SDK with an exporter) to use it.
"""

from __future__ import annotations

from polyserve.errors import MissingDependencyError
from polyserve.pipeline import Middleware

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from opentelemetry.trace import Tracer, TracerProvider

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve.routing import Router

__all__ = ["instrument", "middleware"]

# Trigger of the typed event -> faas.trigger (OpenTelemetry's FaaS conventions).
_TRIGGERS = {
    "Message": "pubsub",
    "StorageEvent": "datasource",
    "StreamRecord": "datasource",
    "ScheduleEvent": "timer",
    "CloudEvent": "other",
}


def instrument(target: App | Router, *, tracer_provider: TracerProvider | None = None) -> None:
    """Open an OpenTelemetry span around every invocation of ``target``.

    Raises:
        MissingDependencyError: the OpenTelemetry API is not installed.
    """
    target.middleware(middleware(tracer_provider=tracer_provider))


def middleware(*, tracer_provider: TracerProvider | None = None) -> Middleware:
    """The middleware ``instrument`` adds, for apps that place it themselves.

    Raises:
        MissingDependencyError: the OpenTelemetry API is not installed.
    """
    try:
        from opentelemetry import trace
    except ImportError:
        raise MissingDependencyError(
            "opentelemetry-api", feature="polyserve.otel", extra="polyserve-core[otel]"
        ) from None
    from polyserve import __version__

    tracer = trace.get_tracer("polyserve", __version__, tracer_provider=tracer_provider)
    return Middleware(_Spans(tracer))


class _Spans:
    """The middleware: a span per invocation, a child of the caller's trace."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def __call__(
        self, call: Callable[[Any], Awaitable[Any]], event: Any, ctx: Context
    ) -> Any:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from polyserve.events.http import HttpRequest, HttpResponse

        is_http = isinstance(event, HttpRequest)
        kind_name = type(event).__name__
        trigger = "http" if is_http else _TRIGGERS.get(kind_name, "other")
        attributes: dict[str, Any] = {
            "faas.trigger": trigger,
            "faas.invocation_id": ctx.invocation_id,
            "faas.coldstart": ctx.is_cold_start,
            "faas.name": ctx.function_name,
            "cloud.provider": ctx.provider,
        }
        if is_http:
            name = event.method.upper()
            attributes["http.request.method"] = name
            attributes["url.path"] = event.path
            kind = SpanKind.SERVER
        else:
            name = f"{getattr(event, 'source', '') or kind_name} process"
            if kind_name == "Message":
                attributes["messaging.message.id"] = event.id
                attributes["messaging.destination.name"] = event.source
            kind = SpanKind.CONSUMER if trigger == "pubsub" else SpanKind.SERVER
        parent = _parent(ctx)
        with self._tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes,
            record_exception=True, set_status_on_exception=True,
        ) as span:  # fmt: skip
            result = await call(event)
            if is_http and isinstance(result, HttpResponse):
                span.set_attribute("http.response.status_code", result.status)
                if ctx.route is not None:
                    span.set_attribute("http.route", ctx.route)
                    span.update_name(f"{name} {ctx.route}")
                if result.status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            return result


def _parent(ctx: Context) -> Any:
    # The caller's span as the parent, when the trace carries W3C-compatible ids.
    trace_context = ctx.trace
    if trace_context is None or trace_context.traceparent is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    assert trace_context.span_id is not None  # a traceparent has both ids
    parent = SpanContext(
        trace_id=int(trace_context.trace_id, 16),
        span_id=int(trace_context.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if trace_context.sampled else 0),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))
