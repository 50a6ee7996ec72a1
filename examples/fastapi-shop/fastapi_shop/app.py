"""The shop: FastAPI answers HTTP, polyserve handles the orders queue and a nightly schedule.

The FastAPI app is an ordinary one (it runs under uvicorn unchanged); polyserve
mounts it at ``/`` and adds the event handlers beside it. Its lifespan runs once
per process and hands the shared ``stock`` to every request.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from polyserve import App, Context, Message, ScheduleEvent
from polyserve.mount import context_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

STOCK: dict[str, int] = {}
SHIPPED: list[dict[str, Any]] = []


class Order(BaseModel):
    sku: str
    quantity: int = 1


@contextlib.asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[dict[str, Any]]:
    STOCK.update({"tea": 10, "mug": 3})  # as a real app would open its database pool
    yield {"stock": STOCK}


api = FastAPI(title="shop", lifespan=lifespan)


@api.get("/stock/{sku}")
async def stock(sku: str, request: Request) -> dict[str, Any]:
    if sku not in request.state.stock:
        raise HTTPException(404, f"no such item {sku}")
    return {"sku": sku, "left": request.state.stock[sku]}


@api.post("/orders", status_code=202)
async def order(body: Order, request: Request) -> dict[str, Any]:
    ctx = context_of(request)
    return {"accepted": body.sku, "invocation": ctx.invocation_id}


app = App("fastapi-shop")
app.mount("/", api)


@app.queue("orders")
def on_order(msg: Message, ctx: Context) -> None:
    order = Order.model_validate(msg.json())
    STOCK[order.sku] = STOCK.get(order.sku, 0) - order.quantity
    SHIPPED.append(order.model_dump())


@app.schedule("restock", cron="0 3 * * *")
def restock(event: ScheduleEvent) -> None:
    for sku in STOCK:
        STOCK[sku] = max(STOCK[sku], 10)
