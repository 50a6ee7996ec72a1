"""polyserve hosting a FastAPI app: ``app.mount("/", api)`` and ``polyserve_aws.handler(app)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polyserve_aws
from benchmarks.sides.fastapi_app import fastapi_app
from polyserve import App

if TYPE_CHECKING:
    from benchmarks.workloads import Handler

__all__ = ["handlers"]


def handlers() -> dict[str, Handler]:
    app = App("pets-api")
    app.mount("/", fastapi_app())
    handler: Handler = polyserve_aws.handler(app)
    return {name: handler for name in ("get-v1", "get-v2", "post-valid", "post-v1")}
