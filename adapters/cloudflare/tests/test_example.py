"""The petstore example's Worker: its entry module, its Wrangler file and its handlers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from polyserve import Trigger
from polyserve_cloudflare import Entrypoint, entrypoint
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeController,
    FakeExecutionContext,
    FakeJsValue,
    FakeMessage,
    FakeRequest,
    FakeResponse,
    FakeRuntime,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

if TYPE_CHECKING:
    from polyserve import App

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "petstore"


@pytest.fixture
def petstore(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    spec = importlib.util.spec_from_file_location("petstore_worker", EXAMPLE / "worker.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def wrangler() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((EXAMPLE / "wrangler.toml").read_text("utf-8"))
    return data


def test_worker_module_exposes_the_default_class(petstore: Any) -> None:
    assert petstore.Default.__name__ == "Default"
    assert issubclass(petstore.Default, Entrypoint)


def test_wrangler_file_matches_the_app(petstore: Any, wrangler: dict[str, Any]) -> None:
    app: App = petstore.app
    assert wrangler["main"] == "worker.py"
    assert "python_workers" in wrangler["compatibility_flags"]
    assert wrangler["compatibility_date"] >= "2025-09-29"  # Python 3.13, class entrypoints
    crons = {r.options["cron"] for r in app.registrations if r.trigger is Trigger.SCHEDULE}
    assert set(wrangler["triggers"]["crons"]) == crons
    queues = {r.name for r in app.registrations if r.trigger is Trigger.QUEUE}
    assert {c["queue"] for c in wrangler["queues"]["consumers"]} == queues


def test_petstore_handlers_run_through_the_adapter(petstore: Any) -> None:
    worker = entrypoint(petstore.app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    origin = "https://polyserve-petstore.example.workers.dev"
    created = asyncio.run(
        worker.fetch(
            FakeRequest(
                "POST",
                f"{origin}/pets",
                [("content-type", "application/json")],
                json.dumps({"name": "Rex", "species": "dog"}).encode(),
            )
        )
    )
    assert isinstance(created, FakeResponse)
    assert created.status == 201
    pet_id = created.json()["id"]

    adopt = FakeMessage("a-1", FakeJsValue({"pet_id": pet_id, "adopter": "Ada"}))
    unknown = FakeMessage("a-2", FakeJsValue({"pet_id": 10**9, "adopter": "Bob"}))
    asyncio.run(worker.queue(FakeBatch("adoptions", [adopt, unknown])))
    assert (adopt.settled, unknown.settled) == ("acked", "retried")

    asyncio.run(worker.scheduled(FakeController(1748746800000, "0 3 * * *")))
