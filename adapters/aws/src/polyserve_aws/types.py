"""Types for annotating code that runs on Lambda (imported only by type checkers and users)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["LambdaContext"]


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
