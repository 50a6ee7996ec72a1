"""Running async handlers from synchronous entry points (Lambda, Azure, functions-framework)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine

T = TypeVar("T")

_local = threading.local()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on this thread's own event loop, kept between calls.

    Keeping the loop lets clients created in a handler (connection pools) survive
    across warm invocations, as they would in a long-running server.
    """
    import asyncio

    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        import atexit

        loop = asyncio.new_event_loop()
        _local.loop = loop
        # Closed when the process ends, as a server closes its loop on shutdown.
        atexit.register(loop.close)
    return loop.run_until_complete(coro)
