"""polyserve on AWS Lambda: ``handler = polyserve_aws.handler(app)``.

Names are imported on first use, so importing the package costs almost nothing at
cold start and never imports boto3.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyserve_aws._context import LambdaContext
    from polyserve_aws._handler import handler

__all__ = ["LambdaContext", "handler"]

_EXPORTS: dict[str, str] = {
    "LambdaContext": "polyserve_aws._context",
    "handler": "polyserve_aws._handler",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'polyserve_aws' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
