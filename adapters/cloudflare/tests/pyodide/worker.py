"""The main module of the Worker that run_worker.mjs loads into Pyodide.

It uses only the standard library, polyserve and the adapter (no pydantic), and
records what its handlers receive so the driver can report it.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from polyserve import (
    App,
    Context,
    HttpError,
    HttpRequest,
    HttpResponse,
    Message,
    ScheduleEvent,
    StorageEvent,
)
from polyserve.idempotency import idempotent
from polyserve_cloudflare import entrypoint

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

app = App("pyodide-worker")
RECORDED: dict[str, list[dict[str, Any]]] = {
    "messages": [],
    "schedules": [],
    "orders": [],
    "storage": [],
    "native": [],
}


@app.get("/pets/{pet_id:int}")
async def get_pet(pet_id: int, request: HttpRequest, ctx: Context) -> HttpResponse:
    body = {
        "pet_id": pet_id,
        "path": request.path,
        "tags": request.query.get_all("tag"),
        "client": request.client,
        "request_id": request.request_id,
        "accept": request.headers.get("accept"),
        "kv": await ctx.raw.env.KV.get("greeting"),
        "provider": ctx.provider,
        "has_deadline": ctx.deadline is not None,
    }
    response = HttpResponse.json(body, headers={"x-pet": str(pet_id)})
    return response.set_cookie("seen", "1").set_cookie("pet", str(pet_id))


@app.post("/pets", status=201)
def create_pet(request: HttpRequest) -> dict[str, Any]:
    # A sync handler: the adapter's async path runs it through asyncio.to_thread.
    data = request.json()
    if not isinstance(data, dict) or not data.get("name"):
        raise HttpError(422, "name_required", "a pet needs a name")
    return {"created": data["name"], "path": request.path}


_released = asyncio.Event()


@app.get("/stream")
def stream() -> HttpResponse:
    # The second chunk waits for POST /release: only a streamed body lets the
    # client read the first one meanwhile.
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        try:
            await asyncio.wait_for(_released.wait(), 10)
        except asyncio.TimeoutError:
            yield b"timed out"
            return
        yield b"second"

    return HttpResponse.stream(chunks(), media_type="text/event-stream")


@app.post("/release")
def release() -> None:
    _released.set()


@app.post("/blobs/{name}")
async def reverse_blob(name: str, request: HttpRequest) -> HttpResponse:
    return HttpResponse.binary(request.body[::-1], headers={"x-name": name})


@app.get("/whoami")
def whoami(ctx: Context) -> dict[str, Any]:
    p = ctx.principal
    return {"principal": None if p is None else [p.source, p.id, p.claims.get("email")]}


@app.post("/orders", status=201)
@idempotent(mode="header")
def create_order(request: HttpRequest, ctx: Context) -> HttpResponse:
    # A personal response: it must only ever be replayed to the caller it names.
    RECORDED["orders"].append({"caller": ctx.principal.id if ctx.principal else None})
    caller = RECORDED["orders"][-1]["caller"]
    return HttpResponse.json({"caller": caller, "run": len(RECORDED["orders"])}, 201)


@app.queue("orders")
async def on_order(message: Message) -> None:
    RECORDED["messages"].append(
        {
            "id": message.id,
            "body": message.body.hex(),
            "attempt": message.attempt,
            "source": message.source,
            "enqueued_at": message.enqueued_at.isoformat() if message.enqueued_at else None,
        }
    )
    if message.body.startswith(b"{") and message.json().get("ok") is False:
        raise RuntimeError(f"order {message.id} rejected")


@app.schedule("nightly", cron="0 3 * * *")
async def nightly(event: ScheduleEvent) -> None:
    when = event.scheduled_at.isoformat() if event.scheduled_at else None
    RECORDED["schedules"].append({"id": event.id, "name": event.name, "at": when})


@app.storage("photos")
def on_photo(event: StorageEvent) -> None:
    when = event.occurred_at.isoformat() if event.occurred_at else None
    RECORDED["storage"].append(
        {
            "id": event.id,
            "action": event.action.value,
            "bucket": event.bucket,
            "key": event.key,
            "size": event.size,
            "etag": event.etag,
            "at": when,
        }
    )


@app.native("cloudflare")
async def email_or_tail(event: Any, ctx: Context) -> str:
    # The runtime's objects as they came: an email message, or the trace items.
    handler = ctx.raw.handler
    if handler == "email":
        RECORDED["native"].append({"handler": handler, "from": event.from_, "to": event.to})
        event.setReject("no such mailbox")
    else:
        RECORDED["native"].append({"handler": handler, "count": len(event)})
    return f"{handler} handled"


Default = entrypoint(app)
Delayed = entrypoint(app, names={"orders-delayed": "orders"}, retry_delay=30)
# Behind Cloudflare Access on every route: its headers are taken as sent.
Access = entrypoint(app, identity_headers={"access": True})


def recorded() -> str:
    """What the handlers saw, as JSON for the driver."""
    return json.dumps(RECORDED)
