"""``@app.native()`` on Workers: the handlers without a typed trigger (email, tail)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from polyserve import App, Context
from polyserve.errors import UnsupportedEventError
from polyserve_cloudflare import WorkerContext, entrypoint
from polyserve_cloudflare.testing import FakeBatch, FakeExecutionContext, FakeMessage, FakeRuntime


class FakeEmail:
    """The fields of a ``ForwardableEmailMessage`` a handler reads."""

    def __init__(self) -> None:
        self.from_ = "ada@example.com"
        self.to = "orders@shop.example"
        self.rejected: str | None = None

    def setReject(self, reason: str) -> None:  # the JavaScript method name
        self.rejected = reason


def test_an_email_reaches_the_native_handler_as_it_came() -> None:
    app = App("mail")
    seen: list[tuple[Any, Context]] = []

    @app.native("cloudflare")
    async def email(message: Any, ctx: Context) -> str:
        seen.append((message, ctx))
        message.setReject("no such mailbox")
        return "rejected"

    env, exec_ctx = {"KV": 1}, FakeExecutionContext()
    worker = entrypoint(app, runtime=FakeRuntime())(exec_ctx, env)
    message = FakeEmail()
    assert asyncio.run(worker.email(message)) == "rejected"
    assert seen[0][0] is message
    assert message.rejected == "no such mailbox"
    ctx = seen[0][1]
    assert ctx.provider == "cloudflare"
    assert ctx.raw == WorkerContext(env, exec_ctx, "email")


def test_tail_items_reach_it_and_the_handler_name_tells_them_apart() -> None:
    app = App("tail")
    kinds: list[str] = []

    @app.native()
    def anything(events: Any, ctx: Context) -> int:
        kinds.append(ctx.raw.handler)
        return len(events) if ctx.raw.handler == "tail" else 0

    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    items = [
        {"scriptName": "shop", "outcome": "ok"},
        {"scriptName": "shop", "outcome": "exception"},
    ]
    assert asyncio.run(worker.tail(items)) == 2
    asyncio.run(worker.email(FakeEmail()))
    assert kinds == ["tail", "email"]


def test_queue_batches_never_reach_it() -> None:
    app = App("queues")
    calls: list[object] = []
    app.native()(calls.append)
    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    batch = FakeBatch("orders", [FakeMessage("1", "x")])
    asyncio.run(worker.queue(batch))
    assert calls == []
    assert batch.messages[0].retried  # no @app.queue("orders"): the message fails alone


def test_without_a_native_handler_it_is_unsupported_and_failures_propagate() -> None:
    bare = App("bare")
    bare.native("aws")(lambda event: None)
    worker = entrypoint(bare, runtime=FakeRuntime())(FakeExecutionContext(), {})
    with pytest.raises(UnsupportedEventError, match=r"email\(\)"):
        asyncio.run(worker.email(FakeEmail()))

    app = App("failing")

    @app.native()
    def failing(event: Any) -> None:
        raise RuntimeError("bounce")

    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    with pytest.raises(RuntimeError, match="bounce"):
        asyncio.run(worker.tail([]))
