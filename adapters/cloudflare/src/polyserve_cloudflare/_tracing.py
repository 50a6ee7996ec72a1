"""Trace context on Workers: the caller's trace, and the ray id logs correlate on.

A request continues the W3C ``traceparent`` it carries (with ``tracestate``), else
the ``CF-Ray`` id Cloudflare gives every request (kept as the trace id, see
``polyserve.tracing.from_cf_ray``). Every log line of a request that has a ray id
carries it as ``cf_ray``, the id Cloudflare's dashboard and Logpush key requests by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.tracing import from_headers

if TYPE_CHECKING:
    from polyserve.context import Context
    from polyserve.tracing import TraceContext

__all__ = ["log_fields", "trace_of"]

_FORMATS = ("traceparent", "cf-ray")


def trace_of(headers: Any) -> TraceContext | None:
    """The trace a request's ``headers`` (``polyserve.events.Headers``) continue; never raises."""
    try:
        return from_headers(headers, formats=_FORMATS)
    except Exception:
        return None


def log_fields(context: Context) -> dict[str, str]:
    """``cf_ray`` for a request Cloudflare gave a ray id (its invocation id)."""
    return {"cf_ray": context.invocation_id}
