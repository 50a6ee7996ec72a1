"""The Lambda context object, and the ``polyserve.Context`` built from it."""

from __future__ import annotations

import time

from polyserve.context import Context

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from polyserve_aws.types import LambdaContext

__all__ = ["to_context"]


def to_context(lambda_context: LambdaContext | None) -> Context:
    """A ``Context`` with provider ``"aws"``, the request id, function name and deadline.

    The deadline is now plus the time the runtime says is left, worked out when first
    read. Without a context object (a local call), the context has no id and no deadline.
    """
    if lambda_context is None:
        return Context("aws")
    return Context(
        "aws",
        invocation_id=lambda_context.aws_request_id,
        function_name=lambda_context.function_name,
        raw=lambda_context,
        deadline_from=_deadline,
    )


def _deadline(lambda_context: LambdaContext) -> float:
    return time.time() + lambda_context.get_remaining_time_in_millis() / 1000
