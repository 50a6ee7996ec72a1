"""polyserve.testing: the test client drives HTTP and events through the real pipeline."""

from __future__ import annotations

import asyncio
from typing import Annotated

import pytest

from polyserve import (
    App,
    CloudEvent,
    ConfigurationError,
    Depends,
    HttpRequest,
    HttpResponse,
    Message,
    ScheduleEvent,
    StorageEvent,
    UnsupportedEventError,
)
from polyserve.pipeline import SetAside
from polyserve.retry import Retry
from polyserve.testing import AsyncTestClient, TestClient


def greeting() -> str:
    return "hello"


def _app() -> App:
    app = App("t")
    seen: list[object] = []
    app.state = seen  # type: ignore[attr-defined]

    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int, word: Annotated[str, Depends(greeting)]) -> dict[str, object]:
        return {"id": pet_id, "word": word}

    @app.post("/echo", status=201)
    def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    @app.get("/login")
    def login() -> HttpResponse:
        return HttpResponse.json({"ok": True}).set_cookie("session", "s1")

    @app.get("/whoami")
    def whoami(request: HttpRequest) -> dict[str, object]:
        return {"cookies": request.cookies, "q": dict(request.query)}

    def poisoned(event: Message, exc: Exception, ctx: object) -> None:
        seen.append(("poison", event.id, type(exc).__name__))

    @app.queue("orders", max_attempts=3, on_poison=poisoned)
    def orders(msg: Message) -> SetAside | None:
        data = msg.json()
        seen.append(data)
        if data.get("retry"):
            raise Retry(delay=30)
        if data.get("poison"):
            return SetAside("bad order")
        if data.get("fail"):
            raise ValueError("boom")
        return None

    @app.schedule("nightly", cron="0 3 * * *")
    def nightly(event: ScheduleEvent) -> dict[str, str]:
        return {"name": event.name}

    @app.storage("uploads")
    def uploaded(event: StorageEvent) -> str:
        return f"{event.action.value}:{event.key}"

    @app.cloudevent("audit")
    def audit(event: CloudEvent) -> object:
        return event.data

    return app


def test_http_through_the_pipeline() -> None:
    client = TestClient(_app())
    response = client.get("/pets/7")
    assert response.status_code == 200
    assert response.json() == {"id": 7, "word": "hello"}
    assert client.get("/pets/x").status_code == 404
    assert client.post("/echo", json={"a": 1}).json() == {"a": 1}
    bad = client.post("/echo", content="{", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"


def test_cookies_and_query() -> None:
    client = TestClient(_app())
    assert client.get("/login").cookies == {"session": "s1"}
    out = client.get("/whoami?a=1", params={"b": "2"}, cookies={"theme": "dark"}).json()
    assert out == {"cookies": {"session": "s1", "theme": "dark"}, "q": {"a": "1", "b": "2"}}


def test_dependency_overrides_are_honoured() -> None:
    app = _app()
    client = TestClient(app)
    with client.override(greeting, lambda: "bonjour"):
        assert client.get("/pets/1").json()["word"] == "bonjour"
    assert client.get("/pets/1").json()["word"] == "hello"
    app.dependency_overrides[greeting] = lambda: "hola"
    assert client.get("/pets/1").json()["word"] == "hola"


def test_queue_outcomes() -> None:
    app = _app()
    client = TestClient(app)
    ok = client.queue("orders", {"id": 1})
    assert len(ok.succeeded) == 1
    assert not ok.failed
    retried = client.queue("orders", {"retry": True})
    assert retried.failed[0].retry_delay == 30
    failed = client.queue("orders", {"fail": True})
    assert isinstance(failed.failed[0].error, ValueError)
    aside = client.queue("orders", {"poison": True})
    assert aside.set_aside
    assert not aside.failed
    last = client.queue("orders", {"fail": True}, attempt=3)
    assert last.set_aside  # max_attempts reached: set aside rather than redelivered
    assert ("poison", last.set_aside[0], "ValueError") in app.state  # type: ignore[attr-defined]
    unknown = client.queue("nope", {})
    assert isinstance(unknown.failed[0].error, UnsupportedEventError)


def test_other_triggers() -> None:
    client = TestClient(_app())
    assert client.schedule("nightly") == {"name": "nightly"}
    assert client.storage("uploads", "a.png") == "created:a.png"
    assert client.storage("uploads", "a.png", action="deleted") == "deleted:a.png"
    assert client.cloudevent("audit", {"x": 1}) == {"x": 1}
    with pytest.raises(UnsupportedEventError):
        client.schedule("weekly")


def test_async_client() -> None:
    async def main() -> None:
        async with AsyncTestClient(_app()) as client:
            assert (await client.get("/pets/2")).json()["id"] == 2
            assert (await client.queue("orders", {"id": 2})).succeeded
            assert await client.schedule("nightly") == {"name": "nightly"}
            assert await client.cloudevent("audit", 5) == 5

    asyncio.run(main())


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="'mars' is not supported"):
        TestClient(_app(), provider="mars")


def test_a_provider_client_imports_its_adapter_on_first_use() -> None:
    import subprocess
    import sys

    pytest.importorskip("polyserve_gcp")

    code = (
        "import sys\n"
        "from polyserve import App\n"
        "from polyserve.testing import TestClient\n"
        "app = App('t')\n"
        "app.get('/')(lambda: {'ok': True})\n"
        "client = TestClient(app, provider='gcp')\n"
        "assert not [m for m in sys.modules if m.startswith('polyserve_')], sys.modules\n"
        "assert client.get('/').native.status_code == 200\n"
        "assert 'polyserve_gcp.testing' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_native_methods_need_a_provider() -> None:
    with pytest.raises(ConfigurationError, match="schedule_native needs TestClient"):
        TestClient(_app()).schedule_native("nightly")


def test_async_client_sends_aws_events_through_the_handler() -> None:
    pytest.importorskip("polyserve_aws")

    async def main() -> None:
        async with AsyncTestClient(_app(), provider="aws") as client:
            assert await client.queue_native("orders", {"id": 1}) == {"batchItemFailures": []}

    asyncio.run(main())


@pytest.mark.parametrize("provider", ["azure", "gcp", "cloudflare"])
def test_provider_clients_carry_headers_and_repeated_query_values(provider: str) -> None:
    pytest.importorskip(f"polyserve_{provider}")
    app = App("h")

    @app.get("/h")
    def headers(request: HttpRequest) -> dict[str, object]:
        return {"accept": request.headers.get_all("accept"), "q": request.query.get_all("q")}

    client = TestClient(app, provider=provider)
    response = client.request("GET", "/h?q=1&q=2", headers={"Accept": "a/b"})
    assert response.json() == {"accept": ["a/b"], "q": ["1", "2"]}
    assert response.native is not None
    got = client.get("/h", params={"q": "x y"}).json()
    assert got["q"] == ["x y"]


@pytest.mark.parametrize("provider", ["aws", "azure", "gcp", "cloudflare"])
def test_dependency_overrides_apply_through_the_provider_entry(provider: str) -> None:
    pytest.importorskip(f"polyserve_{provider}")
    client = TestClient(_app(), provider=provider)
    with client.override(greeting, lambda: "hi"):
        assert client.get("/pets/3").json() == {"id": 3, "word": "hi"}
    assert client.get("/pets/3").json() == {"id": 3, "word": "hello"}
