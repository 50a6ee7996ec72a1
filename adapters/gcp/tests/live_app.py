"""The app the integration tests serve with a real functions-framework server.

Each event handler appends one JSON line describing what it received to the file
named by ``POLYSERVE_OBSERVATIONS``, so the test can assert on what crossed the
process boundary. A message whose text is ``fail`` makes its handler raise.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import TYPE_CHECKING, Any

import polyserve_gcp
from polyserve import (
    App,
    CloudEvent,
    Context,
    HttpRequest,
    HttpResponse,
    Message,
    ScheduleEvent,
    StorageEvent,
    StreamRecord,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

app = App("live")
_lock = threading.Lock()


def observe(kind: str, ctx: Context, **fields: Any) -> None:
    line = {"kind": kind, "invocation_id": ctx.invocation_id, "provider": ctx.provider, **fields}
    with _lock, open(os.environ["POLYSERVE_OBSERVATIONS"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line, default=str) + "\n")


@app.get("/hello/{name}")
def hello(name: str, tag: list[str], ctx: Context) -> dict[str, Any]:
    return {"hello": name, "tags": tag, "invocation_id": ctx.invocation_id}


@app.post("/echo")
def echo(request: HttpRequest) -> HttpResponse:
    answer = HttpResponse.binary(request.body, 201, {"x-client": request.client or ""})
    return answer.set_cookie("a", "1").set_cookie("b", "2")


_released = threading.Event()


@app.get("/stream")
def stream() -> HttpResponse:
    # Waits for POST /release between its chunks: only a streamed body lets the
    # client read the first chunk meanwhile.
    def chunks() -> Iterator[bytes]:
        yield b"first\n"
        yield b"second\n" if _released.wait(10) else b"timed out\n"

    return HttpResponse.stream(chunks(), media_type="text/event-stream")


@app.post("/release")
def release() -> None:
    _released.set()


def _message(kind: str, msg: Message, ctx: Context) -> None:
    if msg.text == "fail":
        raise RuntimeError("the handler failed on purpose")
    observe(
        kind, ctx, id=msg.id, body=base64.b64encode(msg.body).decode(), attributes=msg.attributes,
        attempt=msg.attempt, source=msg.source, group_key=msg.group_key,
        enqueued_at=msg.enqueued_at,
    )  # fmt: skip


@app.topic("orders")
def on_order(msg: Message, ctx: Context) -> None:
    _message("topic", msg, ctx)


@app.queue("adoptions")
def on_adoption(msg: Message, ctx: Context) -> None:
    _message("queue", msg, ctx)


@app.schedule("nightly-report", cron="0 3 * * *")
def nightly(tick: ScheduleEvent, ctx: Context) -> None:
    observe("schedule", ctx, id=tick.id, name=tick.name, payload=tick.payload,
            scheduled_at=tick.scheduled_at)  # fmt: skip


@app.storage("pet-photos-prod", actions=("created", "deleted", "metadata_updated", "archived"))
def on_photo(event: StorageEvent, ctx: Context) -> None:
    observe("storage", ctx, id=event.id, action=event.action.value, bucket=event.bucket,
            key=event.key, size=event.size, version=event.version)  # fmt: skip


@app.stream("pets")
def on_pet(record: StreamRecord, ctx: Context) -> None:
    observe("stream", ctx, id=record.id, change=record.change.value, keys=record.keys,
            old=record.old, new=record.new)  # fmt: skip


@app.cloudevent("*")
def on_any(event: CloudEvent, ctx: Context) -> None:
    observe("cloudevent", ctx, id=event.id, type=event.type, source=event.source, data=event.data,
            extensions=event.extensions)  # fmt: skip


handle_http = polyserve_gcp.http(app)
handle_event = polyserve_gcp.cloudevent(app)
handle_background = polyserve_gcp.background(app)
