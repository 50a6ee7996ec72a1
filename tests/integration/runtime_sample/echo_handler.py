"""A plain Lambda handler that echoes its event and what it sees of its context."""

from __future__ import annotations

from typing import Any, Protocol


class LambdaContext(Protocol):
    """The part of awslambdaric's context object this handler reads."""

    aws_request_id: str
    function_name: str

    def get_remaining_time_in_millis(self) -> int: ...


class HandlerFailedError(Exception):
    """Raised on request, so tests can see how the runtime reports a handler error."""


def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Return the event with the request id, remaining time and function name."""
    if isinstance(event, dict) and event.get("fail") is True:
        raise HandlerFailedError("asked to fail")
    return {
        "echo": event,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }
