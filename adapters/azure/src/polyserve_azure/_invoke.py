"""What every generated function does when the host calls it, before and after the trigger's
own conversion: the ``Context`` of the invocation, the check that the host passed the
kind of object the function was generated for, and the retry policy's run count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.context import Context
from polyserve.errors import UnsupportedEventError
from polyserve_azure import _tracing

if TYPE_CHECKING:
    from collections.abc import Callable

    from polyserve_azure._types import InvocationContext

__all__ = ["NO_CONTEXT", "context", "expect", "retry_attempt"]

# The default of every generated function's `context` parameter, read as "no context"
# (a local call). Not None: the worker refuses an Optional `context` annotation.
NO_CONTEXT: Any = object()


def context(native: InvocationContext | None, name: str, timeout: float | None) -> Context:
    """The ``Context`` of one invocation of the function ``name``, from the worker's context.

    Its trace is read when first asked for: the invocation's trace context, unless the
    trigger's function gives a better source (``Context.trace_from``).
    """
    if native is NO_CONTEXT:
        native = None
    invocation_id = getattr(native, "invocation_id", None) or ""
    function_name = getattr(native, "function_name", None) or name
    ctx = Context.with_timeout(
        "azure",
        timeout,
        invocation_id=str(invocation_id),
        function_name=str(function_name),
        raw=native,
    )
    ctx.trace_from(_tracing.invocation_trace, native)
    ctx.log_fields = _tracing.log_fields
    return ctx


def expect(raw: Any, matches: Callable[[object], bool], what: str) -> Any:
    """``raw``, if ``matches(raw)``; else ``UnsupportedEventError`` naming ``what``."""
    if not matches(raw):
        raise UnsupportedEventError(
            f"expected a {what}, got {type(raw).__name__}",
            description={"provider": "azure", "expected": what},
        )
    return raw


def retry_attempt(context: InvocationContext | None) -> int:
    """The run of the function's retry policy: 1, then 2 on its first retry, ..."""
    # With a retry policy the worker counts the runs of one invocation: retry_count
    # is 0 on the first run. Without one there is no count, and every run is the first.
    count = getattr(getattr(context, "retry_context", None), "retry_count", None)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return 1
    return count + 1
