"""Streamed HTTP responses: a body sent chunk by chunk as it is produced.

A handler streams by returning an iterator or an async iterator of ``bytes`` (a
generator, say; ``str`` chunks are sent UTF-8 encoded), or a
``StreamingResponse`` built with ``HttpResponse.stream`` for its own status and
headers. A mounted ASGI app streams when it sends its body in several
``http.response.body`` messages (Starlette's ``StreamingResponse``, server-sent
events, ``FileResponse``).

Where the platform can send a body as it comes, the adapter does (``polyserve
serve``, functions-framework, Workers); elsewhere (Lambda, Azure Functions, any
caller of ``App.handle_http`` that does not ask for a stream) the chunks are
collected into one body before the response is returned, so what the client gets
is the same, only later. A failure while collecting is a 500 problem response; a
failure once the first chunk was sent can only end the body early, and is logged.

The middleware see the ``StreamingResponse`` before its body is read: they may
change its status and headers (``with_header`` keeps the stream), not its body.
Teardowns of generator providers run when the handler returns, before the body
is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polyserve.events.http import HttpResponse

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import (
        AsyncGenerator,
        AsyncIterable,
        AsyncIterator,
        Generator,
        Iterable,
        Iterator,
    )
    from typing import Any

    from polyserve.context import Context

    Chunks = Iterable[bytes | str] | AsyncIterable[bytes | str]

__all__ = [
    "StreamingResponse",
    "collect",
    "collect_blocking",
    "is_stream",
    "iterate",
    "iterate_blocking",
]


@dataclass(frozen=True, slots=True)
class StreamingResponse(HttpResponse):
    """An ``HttpResponse`` whose body is ``chunks``, read once, as it is sent.

    ``body`` is always empty. Build one with ``HttpResponse.stream``.
    """

    chunks: Any = field(default=(), compare=False, repr=False)

    def with_header(self, name: str, value: str) -> StreamingResponse:
        """A copy with one more header, and the same stream.

        Raises:
            InvalidHeaderError: the header cannot be carried (see ``check_header``).
        """
        plain = HttpResponse.with_header(self, name, value)
        return StreamingResponse(self.status, plain.headers, b"", self.chunks)


def is_stream(result: object) -> bool:
    """Whether a handler's ``result`` is a stream of chunks: an iterator or async iterator.

    ``bytes``, ``str``, lists and dicts are iterable, not iterators: they are bodies.
    """
    cls = result.__class__
    return hasattr(cls, "__anext__") or hasattr(cls, "__next__")


def _chunk(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"a streamed body chunk must be bytes or str, not {type(chunk).__name__}")


async def _chunks(chunks: Chunks, offload: bool) -> AsyncIterator[bytes]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            yield _chunk(chunk)
        return
    it = iter(chunks)
    end = object()
    if offload:
        import asyncio

        # A sync generator may block (read a file, wait on a socket): off the loop.
        while (chunk := await asyncio.to_thread(next, it, end)) is not end:
            yield _chunk(chunk)
    else:
        for chunk in it:
            yield _chunk(chunk)


def _blocking_chunks(chunks: Chunks) -> Iterator[bytes]:
    if hasattr(chunks, "__iter__"):
        for chunk in chunks:
            yield _chunk(chunk)
        return
    from polyserve._aio import run_sync

    # An async generator from a synchronous entry point: each step on this
    # thread's own loop, as the handler that made it ran there.
    it = chunks.__aiter__()
    while True:
        try:
            chunk = run_sync(it.__anext__())  # type: ignore[arg-type]
        except StopAsyncIteration:
            return
        yield _chunk(chunk)


async def _close(chunks: Any) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
        return
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _close_blocking(chunks: Any) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
        return
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        from polyserve._aio import run_sync

        run_sync(aclose())


async def collect(response: StreamingResponse, *, offload: bool = False) -> HttpResponse:
    """``response`` with its whole stream read into ``body``, from async code.

    Raises:
        Exception: whatever reading the stream raised (``TypeError`` for a chunk
            that is neither ``bytes`` nor ``str``).
    """
    try:
        body = b"".join([chunk async for chunk in _chunks(response.chunks, offload)])
    finally:
        await _close(response.chunks)
    return HttpResponse(response.status, response.headers, body)


def collect_blocking(response: StreamingResponse) -> HttpResponse:
    """``collect`` from synchronous code."""
    try:
        body = b"".join(list(_blocking_chunks(response.chunks)))
    finally:
        _close_blocking(response.chunks)
    return HttpResponse(response.status, response.headers, body)


async def iterate(
    response: StreamingResponse, context: Context, *, offload: bool = False
) -> AsyncGenerator[bytes, None]:
    """The chunks of ``response`` for an adapter to send as they come, from async code.

    Empty chunks are skipped. A failure ends the iteration early with a log line
    on ``context.logger`` (the status is sent already); the stream is closed at the
    end either way. ``offload`` reads a sync iterator in a worker thread.
    """
    try:
        async for chunk in _chunks(response.chunks, offload):
            if chunk:
                yield chunk
    except Exception as exc:
        context.logger.exception("the response stream failed", exc)
    finally:
        await _close(response.chunks)


def iterate_blocking(response: StreamingResponse, context: Context) -> Generator[bytes, None, None]:
    """``iterate`` from synchronous code (a WSGI server's response iterator)."""
    try:
        for chunk in _blocking_chunks(response.chunks):
            if chunk:
                yield chunk
    except Exception as exc:
        context.logger.exception("the response stream failed", exc)
    finally:
        _close_blocking(response.chunks)
