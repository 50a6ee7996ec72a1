"""A mounted ASGI app whose lifespan writes to ``POLYSERVE_LIFESPAN_LOG``, served by functions-framework."""

from __future__ import annotations

import os
from typing import Any

import polyserve_gcp
from polyserve import App


def _log(line: str) -> None:
    with open(os.environ["POLYSERVE_LIFESPAN_LOG"], "a", encoding="utf-8") as out:
        out.write(f"{line} {os.getpid()}\n")


async def asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _log("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _log("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


app = App("mounted")
app.mount("/", asgi)
handle_http = polyserve_gcp.http(app)
