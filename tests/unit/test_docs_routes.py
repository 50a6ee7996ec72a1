"""The docs routes: off unless asked, on with App(docs=True) or POLYSERVE_DOCS=1."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from polyserve import App, Context
from polyserve.events.http import HttpRequest

if TYPE_CHECKING:
    import pytest


def _get(app: App, path: str) -> tuple[int, str, bytes]:
    request = HttpRequest(method="GET", path=path)
    response = app.handle_http(request, Context("local", invocation_id="t"))
    return response.status, response.headers.get("content-type", ""), response.body


def _app(docs: bool | None = None) -> App:
    app = App("docs-test", docs=docs)

    @app.get("/items/{n:int}")
    def item(n: int) -> dict[str, int]:
        """One item."""
        return {"n": n}

    return app


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLYSERVE_DOCS", raising=False)
    app = _app()
    assert _get(app, "/openapi.json")[0] == 404
    assert _get(app, "/docs")[0] == 404


def test_on_with_the_switch() -> None:
    app = _app(docs=True)
    status, ctype, body = _get(app, "/openapi.json")
    assert (status, ctype) == (200, "application/json")
    doc = json.loads(body)
    assert list(doc["paths"]) == ["/items/{n}"]
    status, ctype, page = _get(app, "/docs")
    assert status == 200
    assert ctype.startswith("text/html")
    assert b'src="/docs/assets/swagger-ui-bundle.js"' in page
    assert b'"/openapi.json"' in page
    status, ctype, script = _get(app, "/docs/assets/swagger-ui-bundle.js")
    assert status == 200
    assert ctype.startswith("text/javascript")
    assert b"SwaggerUIBundle" in script
    assert _get(app, "/docs/assets/index.html")[0] == 404


def test_on_with_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSERVE_DOCS", "1")
    assert _get(_app(), "/openapi.json")[0] == 200
    assert _get(_app(docs=False), "/openapi.json")[0] == 404


def test_a_configured_asset_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSERVE_DOCS_ASSETS", "/static/swagger/")
    page = _get(_app(docs=True), "/docs")[2]
    assert b'href="/static/swagger/swagger-ui.css"' in page
