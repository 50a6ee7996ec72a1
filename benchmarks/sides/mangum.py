"""Mangum hosting the same FastAPI app, with its default settings (``lifespan="auto"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mangum import Mangum

from benchmarks.sides.fastapi_app import fastapi_app

if TYPE_CHECKING:
    from benchmarks.workloads import Handler

__all__ = ["handlers"]


def handlers() -> dict[str, Handler]:
    handler: Handler = Mangum(fastapi_app())
    return {name: handler for name in ("get-v1", "get-v2", "post-valid", "post-v1")}
