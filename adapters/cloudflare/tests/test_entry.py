from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

import polyserve_cloudflare
from polyserve import App, ConfigurationError
from polyserve_cloudflare import Entrypoint, entrypoint, handlers
from polyserve_cloudflare._js import PlainEntrypoint, PyodideRuntime, entrypoint_base
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeExecutionContext,
    FakeMessage,
    FakeRequest,
    FakeRuntime,
)

if TYPE_CHECKING:
    from .conftest import Seen


def test_the_class_is_the_default_entrypoint(app: App) -> None:
    cls = entrypoint(app, runtime=FakeRuntime())
    assert cls.__name__ == cls.__qualname__ == "Default"
    assert issubclass(cls, Entrypoint)
    assert issubclass(cls, PlainEntrypoint)  # outside Pyodide
    public = sorted(n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)))
    assert public == ["email", "fetch", "queue", "scheduled", "tail"]


def test_the_runtime_constructor_order_is_ctx_then_env(app: App) -> None:
    ctx, env = FakeExecutionContext(), {"KV": 1}
    worker = entrypoint(app)(ctx, env)
    assert (worker.ctx, worker.env) == (ctx, env)


def test_self_env_and_ctx_win_over_the_arguments(app: App, seen: Seen) -> None:
    own_ctx, own_env = FakeExecutionContext(), {"own": True}
    worker = entrypoint(app, runtime=FakeRuntime())(own_ctx, own_env)
    batch = FakeBatch("orders", [FakeMessage("1", "x")])
    asyncio.run(worker.queue(batch, {"other": True}, FakeExecutionContext()))
    assert seen.contexts[0].raw.env is own_env
    assert seen.contexts[0].raw.ctx is own_ctx


def test_arguments_are_used_when_the_instance_has_none(app: App, seen: Seen) -> None:
    env, ctx = {"passed": True}, FakeExecutionContext()
    worker = entrypoint(app, runtime=FakeRuntime())()
    asyncio.run(worker.queue(FakeBatch("orders", [FakeMessage("1", "x")]), env, ctx))
    assert seen.contexts[0].raw.env is env
    assert seen.contexts[0].raw.ctx is ctx


def test_handlers_unpack_into_module_level_functions(app: App) -> None:
    on_fetch, on_scheduled, on_queue = handlers(app, runtime=FakeRuntime())
    assert [f.__name__ for f in (on_fetch, on_scheduled, on_queue)] == [
        "on_fetch",
        "on_scheduled",
        "on_queue",
    ]
    message = FakeMessage("1", "x")
    asyncio.run(on_queue(FakeBatch("orders", [message]), {}, FakeExecutionContext()))
    assert message.settled == "acked"


@pytest.mark.parametrize(
    "options",
    [
        {"http_timeout": 0},
        {"event_timeout": -1.0},
        {"retry_delay": -1},
        {"retry_delay": 86_401},
    ],
)
def test_bad_options_are_configuration_errors(app: App, options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        entrypoint(app, **options)  # type: ignore[arg-type]


def test_without_pyodide_and_without_a_runtime_the_error_says_what_to_do(app: App) -> None:
    worker = entrypoint(app)(FakeExecutionContext(), {})
    with pytest.raises(ConfigurationError, match="runtime="):
        asyncio.run(worker.fetch(FakeRequest("GET", "https://example.com/echo/x")))
    with pytest.raises(ConfigurationError):
        PyodideRuntime()


def test_the_plain_base_is_used_outside_pyodide() -> None:
    assert entrypoint_base() is PlainEntrypoint


def test_the_runtime_base_is_used_inside_pyodide(monkeypatch: pytest.MonkeyPatch) -> None:
    class WorkerEntrypoint:
        def __init__(self, ctx: object, env: object) -> None:
            self.ctx, self.env = ctx, env

    fake_workers = type(sys)("workers")
    fake_workers.WorkerEntrypoint = WorkerEntrypoint  # type: ignore[attr-defined]
    monkeypatch.setattr(sys, "platform", "emscripten")
    monkeypatch.setitem(sys.modules, "workers", fake_workers)
    # Inside Pyodide entrypoint() sets POLYSERVE_OUTBOUND when it is unset: keep ours.
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "memory")
    assert entrypoint_base() is WorkerEntrypoint
    cls = entrypoint(App("x"))
    assert issubclass(cls, WorkerEntrypoint)
    assert cls("c", "e").env == "e"


def test_exports_are_sorted_and_resolve() -> None:
    names = polyserve_cloudflare.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(polyserve_cloudflare, name).__name__ == name
    testing = importlib.import_module("polyserve_cloudflare.testing")
    assert testing.__all__ == sorted(testing.__all__)


def test_importing_the_adapter_loads_no_heavy_modules() -> None:
    code = (
        "import sys, polyserve_cloudflare, polyserve_cloudflare.types;"
        "heavy = {'pydantic', 'js', 'pyodide', 'workers', 'asyncio', 'uuid'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
