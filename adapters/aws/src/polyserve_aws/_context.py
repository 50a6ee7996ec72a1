"""The Lambda context object, and the ``polyserve.Context`` built from it."""

from __future__ import annotations

import time
from typing import Protocol

from polyserve.context import Context

__all__ = ["LambdaContext", "to_context"]


class LambdaContext(Protocol):
    """The part of the Lambda runtime's context object that polyserve reads.

    The runtime's object has more (``invoked_function_arn``, ``memory_limit_in_mb``,
    ``log_group_name``, ...); handlers reach it as ``ctx.raw``.
    """

    @property
    def aws_request_id(self) -> str: ...

    @property
    def function_name(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


def to_context(lambda_context: LambdaContext | None) -> Context:
    """A ``Context`` with provider ``"aws"``, the request id, function name and deadline.

    The deadline is now plus the time the runtime says is left. Without a context
    object (a local call), the context has no id and no deadline.
    """
    if lambda_context is None:
        return Context("aws")
    remaining_ms = lambda_context.get_remaining_time_in_millis()
    return Context(
        "aws",
        invocation_id=lambda_context.aws_request_id,
        function_name=lambda_context.function_name,
        deadline=time.time() + remaining_ms / 1000,
        raw=lambda_context,
    )
