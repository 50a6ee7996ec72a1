"""The one module that touches Pyodide's ``js`` and ``pyodide.ffi`` and the runtime's ``workers``.

Each is imported on first use, so the adapter imports (and its unit tests run)
under CPython, where none of them exist.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

from polyserve.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

__all__ = ["PlainEntrypoint", "PyodideRuntime", "entrypoint_base", "runtime_env"]


class PlainEntrypoint:
    """The base class used where the runtime's ``workers.WorkerEntrypoint`` is not importable."""

    def __init__(self, ctx: Any = None, env: Any = None) -> None:
        self.ctx = ctx
        self.env = env


def entrypoint_base() -> type:
    """The runtime's ``workers.WorkerEntrypoint`` inside Pyodide, else ``PlainEntrypoint``.

    The runtime finds the Worker's handlers by looking for subclasses of its own
    ``WorkerEntrypoint`` in the main module, so the generated class must derive from it.
    Outside Pyodide the name ``workers`` could be an unrelated package, so it is not tried.
    """
    # Read at run time: a type checker would treat sys.platform as the host's constant.
    platform: str = sys.platform
    if platform != "emscripten":
        return PlainEntrypoint
    try:
        workers = import_module("workers")
    except ImportError:
        return PlainEntrypoint
    base = getattr(workers, "WorkerEntrypoint", None)
    return base if isinstance(base, type) else PlainEntrypoint


def runtime_env() -> Any:
    """The runtime's module-level ``env`` (``workers.env``) inside Pyodide, else ``None``."""
    platform: str = sys.platform
    if platform != "emscripten":
        return None
    try:
        workers = import_module("workers")
        return workers.env
    except Exception:  # an older runtime, or cloudflare:workers not importable
        return None


class PyodideRuntime:
    """Creates JavaScript values through Pyodide (``JsRuntime`` for the real runtime)."""

    __slots__ = ("_ffi", "_js")

    def __init__(self) -> None:
        """Raises ``ConfigurationError`` outside Pyodide, where ``js`` does not exist."""
        try:
            self._js: Any = import_module("js")
            self._ffi: Any = import_module("pyodide.ffi")
        except ImportError:
            raise ConfigurationError(
                "creating JavaScript values needs Pyodide's js module, which only the "
                "Workers runtime provides; elsewhere pass runtime= (for example "
                "polyserve_cloudflare.testing.FakeRuntime())"
            ) from None

    def new_response(
        self, status: int, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> Any:
        js_headers = self._js.Headers.new()
        for name, value in headers:
            # append, not set: each Set-Cookie must stay a header of its own.
            js_headers.append(name, value)
        init = self.new_object({"status": status, "headers": js_headers})
        # bytes become a Uint8Array copy; None becomes undefined, a response without a body.
        payload = None if body is None else self._ffi.to_js(body)
        return self._js.Response.new(payload, init)

    def new_stream_response(
        self, status: int, headers: Sequence[tuple[str, str]], chunks: AsyncIterator[bytes]
    ) -> Any:
        js, ffi = self._js, self._ffi
        js_headers = js.Headers.new()
        for name, value in headers:
            js_headers.append(name, value)
        iterator = chunks.__aiter__()
        proxies: list[Any] = []

        def release() -> None:
            # The stream will not call back again: free the Python functions it held.
            for proxy in proxies:
                proxy.destroy()
            proxies.clear()

        async def pull(controller: Any) -> None:
            # The stream asks for the next chunk when its reader has room for it.
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                controller.close()
                release()
                return
            controller.enqueue(ffi.to_js(chunk))

        async def cancel(reason: Any = None) -> None:
            # The client went away: stop the producer.
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()
            release()

        proxies += [ffi.create_proxy(pull), ffi.create_proxy(cancel)]
        source = self.new_object({"pull": proxies[0], "cancel": proxies[1]})
        stream = js.ReadableStream.new(source)
        init = self.new_object({"status": status, "headers": js_headers})
        return js.Response.new(stream, init)

    def new_object(self, fields: Mapping[str, Any]) -> Any:
        # Without dict_converter a dict would reach JavaScript as a Map, which
        # Response and retry() do not read as options.
        return self._ffi.to_js(dict(fields), dict_converter=self._js.Object.fromEntries)

    def json_stringify(self, value: Any) -> str | None:
        text = self._js.JSON.stringify(value)
        return text if isinstance(text, str) else None

    def json_parse(self, text: str) -> Any:
        return self._js.JSON.parse(text)

    def to_js(self, value: Any) -> Any:
        return self._ffi.to_js(value, dict_converter=self._js.Object.fromEntries)

    def is_null(self, value: Any) -> bool:
        return value is None or value is getattr(self._ffi, "jsnull", None)

    def unwrap(self, binding: Any) -> Any:
        if isinstance(binding, self._ffi.JsProxy):
            return binding
        # The workers SDK wraps each binding of a class entry point's self.env to convert
        # values itself; python_to_rpc hands back the JavaScript object, whose calls
        # this adapter converts (bytes, options objects) as the rest of it does.
        workers = sys.modules.get("workers")
        to_rpc = getattr(workers, "python_to_rpc", None)
        return binding if to_rpc is None else to_rpc(binding)
