"""The local server: the app over ASGI, plus ``/_polyserve/`` endpoints, deliveries and schedules."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Any

from polyserve.context import Context, ContextLogger
from polyserve.errors import ConfigurationError
from polyserve.events import (
    ChangeType,
    CloudEvent,
    HttpResponse,
    Message,
    ScheduleEvent,
    StorageAction,
    StorageEvent,
    StreamRecord,
)
from polyserve.local._cron import Cron
from polyserve.local._store import Pending, Store
from polyserve.routing import Trigger
from polyserve.tracing import from_traceparent

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from polyserve.app import App
    from polyserve.outbound import MemoryBackend
    from polyserve.outbound.message import Message as OutboundMessage
    from polyserve.tracing import TraceContext

    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

__all__ = ["LocalServer"]

PREFIX = "/_polyserve/"
_KINDS = {
    "queues": Trigger.QUEUE,
    "topics": Trigger.TOPIC,
    "storage": Trigger.STORAGE,
    "streams": Trigger.STREAM,
    "cloudevents": Trigger.CLOUDEVENT,
}
#: The longest wait before a failed delivery is tried again, without a ``Retry`` delay.
MAX_BACKOFF = 60.0


class BadEvent(ValueError):
    """The body given to a local endpoint does not describe an event of its kind."""


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadEvent("the body must be a JSON object")
    return payload


def parse_payload(trigger: Trigger, body: bytes) -> Any:
    """What is stored for a POST to a local endpoint; ``BadEvent`` when it cannot be one."""
    if trigger in (Trigger.QUEUE, Trigger.TOPIC):
        try:
            return {"body": body.decode()}
        except UnicodeDecodeError:
            raise BadEvent("a message body must be UTF-8 text") from None
    try:
        parsed = json.loads(body)
    except ValueError:
        raise BadEvent("the body is not JSON") from None
    payload = _object(parsed)
    build_event(trigger, "check", payload, 1, 0.0)  # rejects now, not at delivery
    return payload


def build_event(trigger: Trigger, name: str, payload: Any, attempt: int, at: float) -> object:
    """The typed event a stored payload describes."""
    message_id = str(payload.get("id", name))
    try:
        if trigger in (Trigger.QUEUE, Trigger.TOPIC):
            encoded = payload.get("body_base64")
            return Message(
                id=message_id,
                body=payload["body"].encode() if encoded is None else base64.b64decode(encoded),
                attributes=dict(payload.get("attributes") or {}),
                attempt=attempt,
                enqueued_at=_utc(at),
                source=name,
                group_key=payload.get("key"),
            )
        if trigger is Trigger.STORAGE:
            size = payload.get("size")
            return StorageEvent(
                id=message_id,
                action=StorageAction(payload.get("action", "created")),
                bucket=name,
                key=str(payload["key"]),
                size=int(size) if size is not None else None,
                content_type=payload.get("content_type"),
                occurred_at=_utc(at),
            )
        if trigger is Trigger.STREAM:
            return StreamRecord(
                id=message_id,
                change=ChangeType(payload.get("change", "insert")),
                source=name,
                keys=dict(payload.get("keys") or {}),
                old=payload.get("old"),
                new=payload.get("new"),
            )
        return CloudEvent(
            id=message_id,
            source=str(payload.get("source", "/local")),
            type=str(payload["type"]),
            subject=payload.get("subject"),
            time=_utc(at),
            datacontenttype="application/json",
            data=payload.get("data"),
        )
    except KeyError as exc:
        raise BadEvent(f"the body needs the field {exc.args[0]!r}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadEvent(" ".join(str(exc).split())) from None


def _pair(record: tuple[str, object]) -> tuple[str, object]:
    return record


def _id(record: tuple[str, object]) -> str:
    return str(getattr(record[1], "id", ""))


def _trace(record: tuple[str, object]) -> TraceContext | None:
    """The trace a message's producer sent with it, as a ``traceparent`` attribute."""
    event = record[1]
    if not isinstance(event, Message):
        return None
    attributes = event.attributes
    return from_traceparent(attributes.get("traceparent"), attributes.get("tracestate"))


class LocalServer:
    """ASGI application: ``app`` plus the local triggers (see ``polyserve.local``).

    ``state`` is a SQLite file keeping pending and set-aside messages across
    restarts; by default they are kept in memory. ``clock`` gives the time.
    ``outbound`` is the memory backend whose messages are delivered to the app's
    own registrations of the same name (``polyserve serve`` passes one).
    """

    def __init__(
        self,
        app: App,
        *,
        state: str | None = None,
        fire: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        outbound: MemoryBackend | None = None,
    ) -> None:
        self.app = app
        self.clock = clock
        self.log = ContextLogger({"component": "polyserve.local"})
        self.schedules: dict[str, Cron] = {}
        for reg in app.registrations:
            cron = reg.options.get("cron") if reg.trigger is Trigger.SCHEDULE else None
            if cron:
                self.schedules[reg.name] = Cron(cron)
        for name in fire:
            if app.find(Trigger.SCHEDULE, name) is None:
                names = [r.name for r in app.registrations if r.trigger is Trigger.SCHEDULE]
                known = ", ".join(names) or "none"
                raise ConfigurationError(f"no schedule {name!r} to fire; schedules: {known}")
        self.store = Store(state or ":memory:")
        #: The schedules fired once when the server starts (``polyserve serve --fire``).
        self.fire_on_start = tuple(fire)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        #: The memory backend whose sends are delivered here, if any.
        self.outbound = outbound
        self._unlisten = outbound.listen(self._sent) if outbound is not None else None

    # -- what the app sends --------------------------------------------------------

    def _sent(self, kind: str, name: str, message: OutboundMessage) -> None:
        """Store a message the app sent to queue or topic ``name`` for its consumer there."""
        trigger = Trigger.TOPIC if kind == "topic" else Trigger.QUEUE
        if self.app.find(trigger, name) is None:
            self.log.info("local send kept", trigger=trigger.value, name=name, delivered=False)
            return
        payload: dict[str, Any] = {"attributes": message.headers()}
        try:
            payload["body"] = message.body.decode()
        except UnicodeDecodeError:
            payload["body_base64"] = base64.b64encode(message.body).decode()
        if message.key:
            payload["key"] = message.key
        now = self.clock()
        self.store.add(trigger.value, name, payload, now, due=now + message.delay)
        # Sends come from handlers, on the loop or in a worker thread.
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    # -- deliveries ------------------------------------------------------------

    def _context(self, invocation_id: str) -> Context:
        return Context("local", invocation_id=invocation_id, function_name=self.app.name)

    async def deliver(self, pending: Pending) -> str:
        """Deliver one stored message once; return its outcome (done, retry, set_aside)."""
        trigger = Trigger(pending.trigger)
        payload = dict(pending.payload)
        payload.setdefault("id", pending.id)
        event = build_event(trigger, pending.name, payload, pending.attempt, pending.enqueued)
        result = await self.app.handle_batch_async(
            trigger, [(pending.name, event)], self._context(pending.id),
            decode=_pair, item_id=_id, trace_of=_trace,
        )  # fmt: skip
        fields: dict[str, Any] = {
            "trigger": trigger.value, "name": pending.name, "message_id": pending.id,
            "attempt": pending.attempt,
        }  # fmt: skip
        if result.set_aside:
            self.store.set_aside(pending.id, "set aside by the app")
            outcome = "set_aside"
        elif result.failed:
            failure = result.failed[0]
            delay = failure.retry_delay
            if delay is None:
                delay = min(MAX_BACKOFF, 2.0 ** (pending.attempt - 1))
            reason = failure.reason
            if failure.error is not None:
                reason = f"{type(failure.error).__name__}: {failure.error}"
            self.store.retry(pending.id, self.clock() + delay, reason)
            outcome = "retry"
            fields["retry_in"] = delay
        else:
            self.store.done(pending.id)
            outcome = "done"
        self.log.info("local delivery", outcome=outcome, **fields)
        return outcome

    async def deliver_due(self) -> int:
        """Deliver every message that is due; return how many were delivered."""
        due = self.store.due(self.clock())
        for pending in due:
            await self.deliver(pending)
        return len(due)

    async def fire(self, name: str, scheduled_at: dt.datetime | None = None) -> Any:
        """Run schedule ``name`` now; return its handler's result (raises what it raised)."""
        event = ScheduleEvent(
            id=f"{name}-{int(self.clock())}",
            name=name,
            scheduled_at=scheduled_at or _utc(self.clock()),
        )
        try:
            result = await self.app.handle_event_async(
                Trigger.SCHEDULE, name, event, self._context(event.id)
            )
        except Exception as exc:
            self.log.error("schedule failed", exc=exc, trigger="schedule", name=name)
            raise
        self.log.info("local delivery", outcome="done", trigger="schedule", name=name)
        return result

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Deliver due messages and fire schedules until cancelled."""
        wake = self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        now = dt.datetime.now()  # schedules run in local time
        upcoming = {name: cron.next_after(now) for name, cron in self.schedules.items()}
        for name in self.fire_on_start:
            with contextlib.suppress(Exception):  # logged by fire
                await self.fire(name)
        while True:
            await self.deliver_due()
            now = dt.datetime.now()
            for name, at in list(upcoming.items()):
                if at <= now:
                    upcoming[name] = self.schedules[name].next_after(now)
                    with contextlib.suppress(Exception):  # logged by fire
                        await self.fire(name, at.astimezone(dt.timezone.utc))
            waits = [1.0]
            next_due = self.store.next_due()
            if next_due is not None:
                waits.append(next_due - self.clock())
            waits += [(at - now).total_seconds() for at in upcoming.values()]
            wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), max(0.0, min(waits)))

    def close_outbound(self) -> None:
        """Stop taking the memory backend's messages (the server's shutdown does this)."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            response = await self._endpoint(scope, receive)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers.multi_items()
                    ],
                }
            )
            await send({"type": "http.response.body", "body": response.body})
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Mounted ASGI apps start with the server, so a failure shows at once.
                try:
                    for mount in self.app.mounts:
                        await mount.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self._task = asyncio.get_running_loop().create_task(self.run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._task is not None:
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
                self.close_outbound()
                await self.app.aclose()
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _endpoint(self, scope: dict[str, Any], receive: Receive) -> HttpResponse:
        parts = scope["path"][len(PREFIX) :].strip("/").split("/")
        method = scope["method"]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if parts == ["messages"] and method == "GET":
            return HttpResponse.json([p.summary() for p in self.store.listing()])
        if len(parts) == 2 and parts[0] == "messages" and method == "GET":
            found = self.store.get(parts[1])
            if found is None:
                return HttpResponse.problem(404, "not_found", f"no message {parts[1]!r}")
            return HttpResponse.json(found.summary())
        if len(parts) != 2 or not parts[1]:
            return HttpResponse.problem(404, "not_found", f"no local endpoint {scope['path']!r}")
        if method != "POST":
            return HttpResponse.problem(405, "method_not_allowed", "local endpoints take POST")
        kind, name = parts
        if kind == "schedules":
            return await self._fire_now(name)
        trigger = _KINDS.get(kind)
        if trigger is None:
            known = ", ".join([*_KINDS, "schedules"])
            return HttpResponse.problem(404, "not_found", f"unknown kind {kind!r}; known: {known}")
        if self.app.find(trigger, name) is None:
            return HttpResponse.problem(
                404, "not_registered", f"no handler is registered for {trigger.value} {name!r}"
            )
        try:
            payload = parse_payload(trigger, body)
        except BadEvent as exc:
            return HttpResponse.problem(400, "malformed_event", str(exc))
        message_id = self.store.add(trigger.value, name, payload, self.clock())
        if self._wake is not None:
            self._wake.set()
        return HttpResponse.json({"id": message_id, "state": "pending"}, status=202)

    async def _fire_now(self, name: str) -> HttpResponse:
        if self.app.find(Trigger.SCHEDULE, name) is None:
            return HttpResponse.problem(
                404, "not_registered", f"no handler is registered for schedule {name!r}"
            )
        try:
            result = await self.fire(name)
        except Exception as exc:
            return HttpResponse.problem(
                500, "schedule_failed", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            )
        return HttpResponse.json({"name": name, "result": result})


def create() -> LocalServer:
    """The ``LocalServer`` that ``polyserve serve --reload`` starts in its worker process."""
    import os

    from polyserve._cli import _load
    from polyserve.app import App

    app = _load(os.environ["POLYSERVE_LOCAL_APP"], os.environ.get("POLYSERVE_LOCAL_DIR", "."))
    if not isinstance(app, App):
        raise ConfigurationError("local triggers need a polyserve App")
    from polyserve.local import local_outbound

    fire = [n for n in os.environ.get("POLYSERVE_LOCAL_FIRE", "").split(",") if n]
    state = os.environ.get("POLYSERVE_LOCAL_STATE") or None
    return LocalServer(app, state=state, fire=fire, outbound=local_outbound())
