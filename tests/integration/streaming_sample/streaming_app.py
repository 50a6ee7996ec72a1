"""An app whose streams wait for a second request: only a real stream can finish them.

Each stream sends ``first``, then waits (at most 10 s) until ``POST /release`` is
called, then sends ``second``. A server that buffered the body would send nothing
before the wait ended, and then ``timed out`` in place of ``second``. The mounted
app's lifespan writes ``startup`` and ``shutdown`` to ``POLYSERVE_LIFESPAN_LOG``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from polyserve import App

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

_released: dict[str, asyncio.Event] = {}


def _event(name: str) -> asyncio.Event:
    return _released.setdefault(name, asyncio.Event())


async def _chunks(name: str) -> AsyncIterator[bytes]:
    yield b"first\n"
    try:
        await asyncio.wait_for(_event(name).wait(), 10)
    except asyncio.TimeoutError:
        yield b"timed out\n"
        return
    yield b"second\n"


def _log(line: str) -> None:
    with open(os.environ["POLYSERVE_LIFESPAN_LOG"], "a", encoding="utf-8") as out:
        out.write(line + "\n")


@contextlib.asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    _log("startup")
    yield
    _log("shutdown")


api = FastAPI(lifespan=lifespan)


@api.get("/events")
async def events() -> StreamingResponse:
    return StreamingResponse(_chunks("mounted"), media_type="text/event-stream")


app = App("streaming")
app.mount("/api", api)


@app.get("/own")
async def own() -> AsyncIterator[bytes]:
    return _chunks("own")


@app.post("/release/{name}")
async def release(name: str) -> None:
    _event(name).set()
