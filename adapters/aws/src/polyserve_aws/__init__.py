"""polyserve on AWS Lambda: ``handler = polyserve_aws.handler(app)``.

Names are imported on first use, so importing the package costs almost nothing at
cold start and never imports boto3.
"""

from __future__ import annotations

from importlib import import_module

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from polyserve_aws._handler import handler
    from polyserve_aws.types import LambdaContext

__all__ = ["LambdaContext", "handler"]

_EXPORTS: dict[str, str] = {
    "LambdaContext": "polyserve_aws.types",
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
