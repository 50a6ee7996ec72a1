"""The ``polyserve.Context`` of one Cloud Functions invocation.

Cloud Functions tells a function neither its deadline nor, for HTTP, an
invocation id, so the adapter derives them:

- ``invocation_id``: the CloudEvent ``id``, the background event id, or for HTTP
  the request id (``Function-Execution-Id``, the trace id of
  ``X-Cloud-Trace-Context``, or a generated one).
- ``function_name``: ``K_SERVICE`` (2nd gen), else ``FUNCTION_TARGET``, else
  ``FUNCTION_NAME`` (1st gen), else the app's name.
- ``deadline``: now plus ``FUNCTION_TIMEOUT_SEC`` when the platform sets it,
  else plus the ``timeout`` given to the entry point (60 s by default). Set
  ``timeout`` to the ``--timeout`` you deploy with.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from polyserve.context import Context
from polyserve_gcp import _tracing

if TYPE_CHECKING:
    from polyserve import App

__all__ = ["DEFAULT_TIMEOUT", "PROVIDER", "function_name", "make_context", "timeout_seconds"]

PROVIDER = "gcp"
DEFAULT_TIMEOUT = 60.0

_NAME_VARIABLES = ("K_SERVICE", "FUNCTION_TARGET", "FUNCTION_NAME")


def timeout_seconds(configured: float) -> float:
    """``FUNCTION_TIMEOUT_SEC`` when set to a positive number, else ``configured``."""
    value = os.environ.get("FUNCTION_TIMEOUT_SEC", "")
    try:
        seconds = float(value)
    except ValueError:
        # Absent or unreadable: the configured timeout still gives handlers a deadline,
        # where failing every invocation over an environment variable would not.
        return configured
    return seconds if seconds > 0 else configured


def function_name(app: App) -> str:
    """The deployed function's name from the platform's environment, else the app's name."""
    for variable in _NAME_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return value
    return app.name


def make_context(app: App, invocation_id: str, timeout: float, raw: Any) -> Context:
    """A ``Context`` for provider ``"gcp"`` with a deadline ``timeout`` seconds from now.

    Its trace is read from ``raw`` when first asked for (``_tracing``), and its log
    lines carry Cloud Logging's trace fields.
    """
    context = Context.with_timeout(
        PROVIDER,
        timeout_seconds(timeout),
        invocation_id=invocation_id,
        function_name=function_name(app),
        raw=raw,
        log_fields=_tracing.log_fields,
    )
    context.trace_from(_tracing.trace_of, raw)
    return context
