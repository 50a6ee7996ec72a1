"""Mounted ASGI apps: a FastAPI or Starlette app served beside polyserve's handlers.

``App.mount(prefix, asgi_app)`` sends the requests under ``prefix`` that no
polyserve route takes to ``asgi_app``. The request goes through the app's
middleware like any other; at the end of the pipeline, in place of a handler, this
module turns the ``HttpRequest`` into an ASGI HTTP scope, runs the ASGI app, and
turns what it sends back into an ``HttpResponse``. Every adapter answers HTTP with
``App.handle_http``, so a mounted app runs the same on every cloud.

The scope (ASGI 3.0, HTTP spec 2.3) carries HTTP/1.1, the method, ``scheme`` (from
``X-Forwarded-Proto``, else ``https``), the full ``path`` with the mount prefix as
``root_path`` (as Starlette's own ``Mount`` and uvicorn's ``--root-path`` do), the
path re-encoded as ``raw_path``, the query string, every header value with names in
lower case, the client address, a shallow copy of the lifespan ``state``, and the
invocation's ``Context`` under ``scope["extensions"]["polyserve"]["context"]``
(``context_of(request)`` reads it from a Starlette request).

Lifespan: the first request a process sends to the app starts its lifespan
(``lifespan.startup``); requests that arrive meanwhile wait for the same startup.
A startup that fails fails those requests (500, with a log line) and is tried
again by the next request. An app that does not speak the lifespan protocol
(it raises on the lifespan scope before answering) runs without one, as under
uvicorn. ``App.close`` (or ``aclose``) sends ``lifespan.shutdown``; see
``docs/asgi.md`` for when each platform gets there.

The event loop: a lifespan's state (a client pool, say) is bound to the loop that
created it, so every request of a process runs on that one loop. Under an async
server (``polyserve serve``, Workers) it is the server's own loop. Under the
synchronous entry points (Lambda, Azure and functions-framework in their worker
threads) it is a loop on a daemon thread that this module starts with the first
request; the invocation waits for its answer. That thread registers an ``atexit``
shutdown, and when nothing else handles ``SIGTERM`` (Lambda, which sends it when an
extension is registered) it installs a handler that shuts down and exits.

Whatever the ASGI app does wrong (raise before answering, send no response or two,
send a body before the start message, give an invalid status or header, or run
past the invocation's deadline) ends in a 500 problem response and a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from polyserve.errors import ConfigurationError, MountedAppError, StartupError
from polyserve.events.headers import Headers
from polyserve.events.http import HttpResponse

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping
    from typing import Any

    from polyserve.context import Context
    from polyserve.events.http import HttpRequest

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["Mount", "context_of", "scope_for"]

# How long a request may run when the platform gives no deadline, and how long
# shutdown may take, in seconds.
DEFAULT_TIMEOUT = 300.0
SHUTDOWN_TIMEOUT = 10.0


def context_of(request: Any) -> Context:
    """The polyserve ``Context`` of the invocation a mounted app is answering.

    ``request`` is a Starlette/FastAPI ``Request`` (anything with a ``scope``), or
    the ASGI scope itself.

    Raises:
        LookupError: the scope did not come from polyserve.
    """
    scope = getattr(request, "scope", request)
    try:
        return scope["extensions"]["polyserve"]["context"]  # type: ignore[no-any-return]
    except (KeyError, TypeError):
        raise LookupError("this ASGI scope was not built by polyserve") from None


def scope_for(
    request: HttpRequest, root_path: str, context: Context, state: dict[str, Any]
) -> dict[str, Any]:
    """The ASGI HTTP scope for ``request`` to an app mounted at ``root_path``.

    ``state`` is the lifespan state, copied shallowly as uvicorn does.
    """
    from urllib.parse import quote

    headers = request.headers
    client = request.client
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method.upper(),
        "scheme": headers.get("x-forwarded-proto", "https").split(",", 1)[0].strip() or "https",
        "path": request.path,
        # The path as it would have been sent: the adapters decoded it, so it is
        # encoded again, the reserved characters and the slashes kept.
        "raw_path": quote(request.path, safe="/:@!$&'()*+,;=~").encode("ascii"),
        "root_path": root_path,
        "query_string": request.query.to_string().encode("ascii") if request.query else b"",
        "headers": [
            (name.encode("latin-1"), value.encode("latin-1", "replace"))
            for name, value in headers.multi_items()
        ],
        "client": (client, 0) if client else None,
        "server": None,
        "state": state.copy(),
        "extensions": {"polyserve": {"context": context}},
    }


class _Lifespan:
    """The lifespan of one mounted app in this process: started once, on its loop."""

    __slots__ = ("_app", "_inbox", "_shut", "_starting", "_task", "is_supported", "state")

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.state: dict[str, Any] = {}
        self.is_supported = True
        self._starting: asyncio.Future[None] | None = None
        self._inbox: asyncio.Queue[Message] | None = None
        self._shut: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def ensure_started(self) -> None:
        """Start the lifespan unless it has started; wait for a startup under way.

        Raises:
            StartupError: the startup failed (the next call tries again).
        """
        starting = self._starting
        if starting is not None and starting.done() and starting.exception() is None:
            return
        if starting is None:
            starting = self._starting = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(self._run(starting))
        try:
            await asyncio.shield(starting)
        except StartupError:
            if self._starting is starting:
                self._starting = None  # the next request tries again
            raise

    async def _run(self, started: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        inbox.put_nowait({"type": "lifespan.startup"})
        shut: asyncio.Future[None] = loop.create_future()
        state: dict[str, Any] = {}
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = state

        async def send(message: Message) -> None:
            kind = message.get("type")
            if kind == "lifespan.startup.complete" and not started.done():
                self.state, self._inbox, self._shut = state, inbox, shut
                started.set_result(None)
            elif kind == "lifespan.startup.failed" and not started.done():
                reason = message.get("message") or "the app reported lifespan.startup.failed"
                started.set_exception(StartupError(f"lifespan startup failed: {reason}"))
            elif (
                kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed")
                and not shut.done()
            ):
                shut.set_result(None)

        try:
            await self._app(scope, inbox.get, send)
        except BaseException as exc:
            if not started.done():
                # No answer at all: an app without lifespan support, as uvicorn's "auto".
                self.is_supported = False
                started.set_result(None)
            elif not shut.done():
                shut.set_result(None)
            if not isinstance(exc, Exception):
                raise
        else:
            if not started.done():
                self.is_supported = False
                started.set_result(None)
            if not shut.done():
                shut.set_result(None)

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait (at most ``SHUTDOWN_TIMEOUT``) for the app."""
        inbox, shut = self._inbox, self._shut
        self._starting = self._inbox = self._shut = None
        if inbox is None or shut is None:
            return
        inbox.put_nowait({"type": "lifespan.shutdown"})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(shut), SHUTDOWN_TIMEOUT)


# The end of a streamed body, in the queue of its chunks.
_END = object()
# How many chunks a streaming app may run ahead of the client before ``send`` waits.
_QUEUE_SIZE = 16


class _Exchange:
    """One request's ASGI messages: the body in, the response out, checked as they come.

    ``head`` is resolved when the caller can answer: once the app has finished (its
    response complete or not), or at the first body message that says more will
    follow, from when on the chunks go through ``queue`` to a ``_Stream``.
    """

    __slots__ = (
        "chunks", "done", "error", "expired", "head", "headers", "queue", "request_body", "room",
        "status",
    )  # fmt: skip

    def __init__(self, body: bytes, head: asyncio.Future[None]) -> None:
        self.request_body: bytes | None = body
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.done = asyncio.Event()
        self.head = head
        self.queue: asyncio.Queue[object] | None = None
        self.room: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.expired: float | None = None  # the deadline (s) that cancelled the app, if one did

    async def receive(self) -> Message:
        body = self.request_body
        if body is not None:
            self.request_body = None
            return {"type": "http.request", "body": body, "more_body": False}
        # The client is there until the response is complete, as on a real server:
        # a streaming response watches for the disconnect meanwhile.
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if self.done.is_set():
            raise MountedAppError(f"the ASGI app sent {kind!r} after its response was complete")
        if kind == "http.response.start":
            if self.status is not None:
                raise MountedAppError("the ASGI app sent http.response.start twice")
            status = message.get("status")
            if status.__class__ is not int or not 200 <= status <= 599:
                raise MountedAppError(f"the ASGI app sent an invalid status {status!r}")
            try:
                self.headers = [
                    (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                    for name, value in message.get("headers", ())
                ]
            except (TypeError, ValueError):
                raise MountedAppError("the ASGI app sent headers that are not byte pairs") from None
            self.status = status
        elif kind == "http.response.body":
            if self.status is None:
                raise MountedAppError("the ASGI app sent a body before http.response.start")
            chunk = message.get("body", b"")
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise MountedAppError("the ASGI app sent a body that is not bytes")
            more = message.get("more_body", False)
            queue = self.queue
            if queue is None and more and not self.head.done():
                # The first of several chunks: from now on the body is a stream.
                queue = self.queue = asyncio.Queue()
                self.room = asyncio.Event()
                for earlier in self.chunks:
                    queue.put_nowait(earlier)
                self.chunks = []
                self.head.set_result(None)
            if queue is None:
                self.chunks.append(bytes(chunk))
            elif chunk:
                queue.put_nowait(bytes(chunk))
                room = self.room
                while room is not None and queue.qsize() >= _QUEUE_SIZE:
                    # The reader is behind: wait, as a server's send waits for the socket.
                    room.clear()
                    await room.wait()
            if not more:
                self.done.set()
        else:
            raise MountedAppError(f"the ASGI app sent an unknown message {kind!r}")

    def finish(self, error: BaseException | None) -> None:
        """The app has returned (or failed with ``error``): wake whoever waits."""
        self.done.set()  # any task still waiting for a disconnect gets it
        self.error = error
        if self.queue is not None:
            self.queue.put_nowait(_END if error is None else error)
        if not self.head.done():
            self.head.set_result(None)

    async def take(self) -> object:
        """The next chunk of a streamed body, ``_END``, or the exception that ended it."""
        queue, room = self.queue, self.room
        if queue is None or room is None:
            raise MountedAppError("the ASGI app's body is not a stream")
        item = await queue.get()
        room.set()
        return item

    def response(self) -> HttpResponse:
        """The complete response (``MountedAppError`` unless one was sent)."""
        if self.status is None or not self.done.is_set():
            raise MountedAppError("the ASGI app returned without a complete response")
        # Headers as the app sent them, checked as every response's are.
        return HttpResponse(self.status, Headers(self.headers), b"".join(self.chunks))


class _Stream:
    """The rest of a streamed body, read from any thread or loop; the app runs on its own.

    Iterated from async code on the mount's loop, it waits on the queue; from another
    loop or thread, it waits for the mount's loop to hand each chunk over.
    """

    __slots__ = ("_exchange", "_loop", "_task")

    def __init__(
        self, exchange: _Exchange, task: asyncio.Task[None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._exchange = exchange
        self._task = task
        self._loop = loop

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> bytes:
        take = self._exchange.take
        if asyncio.get_running_loop() is self._loop:
            item = await take()
        else:
            item = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(take(), self._loop))
        if item is _END:
            raise StopAsyncIteration
        return self._chunk(item)

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> bytes:
        item = asyncio.run_coroutine_threadsafe(self._exchange.take(), self._loop).result()
        if item is _END:
            raise StopIteration
        return self._chunk(item)

    @staticmethod
    def _chunk(item: object) -> bytes:
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]  # the queue holds bytes otherwise

    def close(self) -> None:
        """Stop reading: the app sees the client disconnect, and is cancelled."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel)

    async def aclose(self) -> None:
        self.close()

    def _cancel(self) -> None:
        self._exchange.done.set()
        if not self._task.done():
            self._task.cancel()


def _expire(exchange: _Exchange, task: asyncio.Task[None], timeout: float) -> None:
    """The deadline has come: cancel the app's task, noting why."""
    if not task.done():
        exchange.expired = timeout
        task.cancel()


class Mount:
    """An ASGI app mounted at ``prefix``, with its lifespan and its event loop.

    Built by ``App.mount``. ``prefix`` is ``""`` for the root, else a path without
    a trailing slash; it covers itself and every path below it.
    """

    __slots__ = ("_lifespan", "_lock", "_loop", "_thread", "app", "prefix")

    def __init__(self, prefix: str, app: ASGIApp) -> None:
        if not prefix.startswith("/"):
            raise ConfigurationError(f"mount prefix must start with '/': {prefix!r}")
        if not callable(app):
            raise ConfigurationError(f"mount needs an ASGI application, got {app!r}")
        self.prefix = prefix.rstrip("/")
        self.app = app
        self._lifespan = _Lifespan(app)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Mount({self.prefix or '/'!r}, {self.app!r})"

    def covers(self, path: str) -> bool:
        """Whether ``path`` (normalised) is the prefix or below it."""
        prefix = self.prefix
        return not prefix or path == prefix or path.startswith(prefix + "/")

    @property
    def lifespan_state(self) -> dict[str, Any]:
        """The state the app's lifespan startup left (empty before it ran)."""
        return self._lifespan.state

    # -- running a request ------------------------------------------------------

    async def _serve(self, request: HttpRequest, context: Context) -> HttpResponse:
        await self._lifespan.ensure_started()
        loop = asyncio.get_running_loop()
        exchange = _Exchange(request.body, loop.create_future())
        scope = scope_for(request, self.prefix, context, self._lifespan.state)
        task = loop.create_task(self._run(exchange, scope, context))
        # The deadline cancels the app's task: one task per request, as under a server.
        remaining = context.remaining_time()
        timeout = DEFAULT_TIMEOUT if remaining is None else max(remaining, 0.001)
        timer = loop.call_later(timeout, _expire, exchange, task, timeout)
        task.add_done_callback(lambda _: timer.cancel())
        try:
            await exchange.head
        except asyncio.CancelledError:
            task.cancel()
            raise
        status = exchange.status
        if exchange.queue is not None and status is not None:
            # Sent on as it comes: what goes wrong from here ends the stream early.
            from polyserve.streaming import StreamingResponse

            stream = _Stream(exchange, task, loop)
            return StreamingResponse(status, Headers(exchange.headers), b"", stream)
        if exchange.error is not None:
            raise exchange.error
        return exchange.response()

    async def _run(self, exchange: _Exchange, scope: Scope, context: Context) -> None:
        """Run the app for one request (``_serve`` cancels it at the deadline)."""
        error: BaseException | None = None
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except asyncio.CancelledError:
            if exchange.expired is not None:
                if not exchange.done.is_set():
                    error = MountedAppError(
                        f"the ASGI app gave no complete response within {exchange.expired:.3g} s"
                    )
            else:
                # The reader went away (a client disconnected from a stream).
                error = MountedAppError("the response stream was closed before its end")
        except Exception as exc:
            if not exchange.done.is_set():
                error = exc
            else:
                # As on a server: the response was sent, and the error only goes to the log.
                context.logger.exception("the ASGI app raised after its response", exc)
        exchange.finish(error)

    async def start(self) -> None:
        """Run the app's lifespan startup now, on the running loop (a server's startup).

        Raises:
            StartupError: the startup failed.
        """
        home = self._loop
        if home is None or home.is_closed():
            home = self._adopt(asyncio.get_running_loop())
        if home is asyncio.get_running_loop():
            await self._lifespan.ensure_started()
        else:
            future = asyncio.run_coroutine_threadsafe(self._lifespan.ensure_started(), home)
            await asyncio.wrap_future(future)

    async def call(self, request: HttpRequest, context: Context) -> HttpResponse:
        """Answer ``request`` from async code, on the mount's loop."""
        loop = asyncio.get_running_loop()
        home = self._loop
        if home is None or home.is_closed():
            home = self._adopt(loop)
        if home is loop:
            return await self._serve(request, context)
        future = asyncio.run_coroutine_threadsafe(self._serve(request, context), home)
        return await asyncio.wrap_future(future)

    def call_blocking(self, request: HttpRequest, context: Context) -> HttpResponse:
        """Answer ``request`` from synchronous code: run on the mount's loop, and wait."""
        home = self._loop
        if home is None or home.is_closed() or not home.is_running():
            home = self._start_thread()
        future = asyncio.run_coroutine_threadsafe(self._serve(request, context), home)
        return future.result()

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        from polyserve import _aio

        if getattr(_aio._local, "loop", None) is loop:
            # The loop a synchronous entry point runs async code on lives only while
            # that code runs: the app gets a loop of its own that keeps running.
            return self._start_thread()
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = loop
            return self._loop

    def _start_thread(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            home = self._loop
            if home is not None and not home.is_closed() and home.is_running():
                return home
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="polyserve-asgi", daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread
        import atexit

        atexit.register(self.close)
        _shutdown_on_sigterm(self)
        return loop

    # -- shutdown ---------------------------------------------------------------

    async def aclose(self) -> None:
        """Run the app's lifespan shutdown (if it started), on the mount's loop."""
        home = self._loop
        if home is None or home.is_closed():
            return
        loop = asyncio.get_running_loop()
        if home is loop:
            await self._lifespan.shutdown()
        elif home.is_running():
            future = asyncio.run_coroutine_threadsafe(self._lifespan.shutdown(), home)
            await asyncio.wrap_future(future)
        self._stop_thread()

    def close(self) -> None:
        """Run the app's lifespan shutdown from synchronous code; stop the mount's thread."""
        home = self._loop
        if home is None or home.is_closed():
            return
        if self._thread is not None and home.is_running():
            future = asyncio.run_coroutine_threadsafe(self._lifespan.shutdown(), home)
            # Shutting down: a failure has nobody left to be reported to.
            with contextlib.suppress(Exception):
                future.result(SHUTDOWN_TIMEOUT + 1)
            self._stop_thread()

    def _stop_thread(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._thread = self._loop = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(SHUTDOWN_TIMEOUT)
        if not thread.is_alive():
            loop.close()


def _shutdown_on_sigterm(mount: Mount) -> None:
    """On the main thread, when ``SIGTERM`` has no handler, shut ``mount`` down on it."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            import sys

            mount.close()
            sys.exit(0)

        signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        return
