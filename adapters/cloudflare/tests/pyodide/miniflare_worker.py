"""The Worker that run_miniflare.mjs loads into Pyodide, with Miniflare's bindings as ``env``.

It produces to two Miniflare queues (``ORDERS`` and ``EVENTS``, a queue and a topic
here), stores objects in an R2 bucket (``THUMBS``), and uses a KV namespace and a
D1 database directly. Its queue handlers record what they receive, so the driver
can report the round trip.
"""

from __future__ import annotations

import json
from typing import Any

from polyserve import App, Context, HttpRequest, HttpResponse, Message
from polyserve.idempotency import idempotent
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.idempotency import D1Store

app = App("miniflare-worker")
orders = app.queue_out("orders")
events = app.topic_out("events")
thumbs = app.bucket("thumbs")
# No backend is configured: inside the Workers runtime the entry point makes the
# bindings of the invocation's env the default (POLYSERVE_OUTBOUND=cloudflare).

ORDER_PAYLOADS: list[Any] = [
    {"id": 1, "sku": "A", "price": 9.5, "tags": ["x", None]},
    "plain text é",
    b"\x00\x01\xff",
    b"utf-8 bytes",
    {"big": 2**60, "one": 1.0},  # JavaScript would change these numbers: sent as text
]
RETRIED = {"id": 2, "retry": True}
RECORDED: dict[str, list[dict[str, Any]]] = {
    "orders": [],
    "events": [],
    "sent": [],
    "payments": [],
}


def _expected(payload: Any) -> str:
    from polyserve.outbound import Queue

    return Queue("x").message(payload).body.hex()


@app.post("/orders", status=202)
async def create_orders(ctx: Context) -> dict[str, Any]:
    await orders.send_batch_async(ORDER_PAYLOADS)
    await orders.send_async(RETRIED)
    await orders.send_async("delayed", delay=1)
    await events.publish_async(
        {"kind": "created", "id": 1}, attributes={"kind": "created"}, trace=ctx.trace
    )
    sent = [*ORDER_PAYLOADS, RETRIED, "delayed"]
    RECORDED["sent"] = [{"body": _expected(p)} for p in sent]
    return {"sent": len(sent) + 1, "trace_id": ctx.trace_id}


@app.post("/too-large")
async def too_large() -> dict[str, Any]:
    from polyserve.outbound import MessageTooLargeError

    try:
        await orders.send_async("x" * 128_001)
    except MessageTooLargeError as exc:
        return {"error": exc.code, "limit": exc.limit, "service": exc.service}
    return {"error": None}


@app.queue("orders")
async def on_order(message: Message, ctx: Context) -> None:
    RECORDED["orders"].append(_record(message, ctx))
    if message.body == json.dumps(RETRIED, separators=(",", ":")).encode() and (
        message.attempt == 1
    ):
        raise RuntimeError("the first delivery fails, so that Queues redelivers it")


@app.queue("events")
async def on_event(message: Message, ctx: Context) -> None:
    RECORDED["events"].append(_record(message, ctx))


def _record(message: Message, ctx: Context) -> dict[str, Any]:
    return {
        "id": message.id,
        "body": message.body.hex(),
        "attributes": dict(message.attributes),
        "attempt": message.attempt,
        "source": message.source,
        "enqueued": message.enqueued_at is not None,
        "trace_id": ctx.trace_id,
    }


@app.put("/thumbs/{key:path}", status=201)
async def put_thumb(key: str, request: HttpRequest) -> dict[str, Any]:
    media = request.headers.get("content-type") or "application/octet-stream"
    await thumbs.put_async(key, request.body, content_type=media, metadata={"by": "polyserve"})
    return {"key": key}


@app.get("/thumbs/{key:path}")
async def get_thumb(key: str, ctx: Context) -> HttpResponse:
    data = await thumbs.get_async(key)
    chunks = [len(chunk) async for chunk in thumbs.open_async(key, chunk_size=65_536)]
    # What R2 stored beside the bytes, read through the binding itself.
    stored = await ctx.raw.env.THUMBS.head(key)
    return HttpResponse.binary(
        data,
        headers={
            "x-chunks": ",".join(map(str, chunks)),
            "x-stored-type": str(stored.httpMetadata.contentType),
            "x-stored-by": str(stored.customMetadata.by),
        },
    )


@app.get("/thumbs")
async def list_thumbs(request: HttpRequest) -> dict[str, Any]:
    prefix = request.query.get("prefix") or ""
    return {"keys": [key async for key in thumbs.list_async(prefix)]}


@app.delete("/thumbs/{key:path}", status=204)
async def delete_thumb(key: str) -> None:
    await thumbs.delete_async(key)


@app.get("/thumbs-url")
def thumb_url() -> dict[str, Any]:
    from polyserve.errors import ConfigurationError

    try:
        thumbs.url("a")
    except ConfigurationError as exc:
        return {"error": str(exc)}
    return {"error": None}


@app.get("/kv/{key}")
async def kv(key: str, ctx: Context) -> dict[str, Any]:
    env = ctx.raw.env
    from polyserve_cloudflare._js import PyodideRuntime

    await env.KV.put(key, f"value of {key}")
    missing = await env.KV.get("nothing-here")
    return {"value": await env.KV.get(key), "missing_is_null": PyodideRuntime().is_null(missing)}


@app.get("/d1")
async def d1(ctx: Context) -> dict[str, Any]:
    db = ctx.raw.env.DB
    await db.prepare("CREATE TABLE IF NOT EXISTS pets (id INTEGER PRIMARY KEY, name TEXT)").run()
    await db.prepare("INSERT INTO pets (name) VALUES (?)").bind("Rex").run()
    row = await db.prepare("SELECT id, name FROM pets WHERE name = ?").bind("Rex").first()
    return {"id": row.id, "name": row.name}


@app.post("/payments", status=201)
@idempotent(D1Store("DB"), mode="header")
async def pay(request: HttpRequest) -> dict[str, Any]:
    # Runs once per Idempotency-Key (and caller): the record is in Miniflare's D1.
    RECORDED["payments"].append({"key": request.headers.get("idempotency-key")})
    return {"run": len(RECORDED["payments"]), "amount": request.json()["amount"]}


Default = entrypoint(app)


def recorded() -> str:
    """What the queue handlers saw, as JSON for the driver."""
    return json.dumps(RECORDED)
