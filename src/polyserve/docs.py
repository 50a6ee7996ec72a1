"""The API docs routes: ``GET /openapi.json`` and an interactive page at ``/docs``.

Mounted by ``App(..., docs=True)``, or for every app when the ``POLYSERVE_DOCS``
environment variable is ``1`` (``polyserve serve`` sets it unless given
``--no-docs``); off otherwise, so an app deployed to a cloud shows no docs unless
asked. The page is Swagger UI, served by the app itself from the
``swagger-ui-bundle-v2`` package (the ``polyserve-core[docs]`` extra), or loaded from
``POLYSERVE_DOCS_ASSETS``, a URL of a folder holding Swagger UI's files
(``swagger-ui-bundle.js``, ``swagger-ui.css``): nothing comes from elsewhere unless
configured.
"""

from __future__ import annotations

import json
import os
from html import escape
from typing import TYPE_CHECKING, Any

from polyserve.errors import HttpError
from polyserve.events.http import HttpResponse

if TYPE_CHECKING:
    from polyserve.app import App

__all__ = ["DOCS_PATH", "OPENAPI_PATH", "docs_enabled", "is_docs_route", "mount"]

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
_ASSETS = f"{DOCS_PATH}/assets"
_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def docs_enabled(docs: bool | None) -> bool:
    """``docs`` if given, else whether ``POLYSERVE_DOCS`` is ``1`` or ``true``."""
    if docs is not None:
        return docs
    from polyserve.app import _ON

    return os.environ.get("POLYSERVE_DOCS", "").strip().lower() in _ON


def _bundled_folder() -> str | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return str(swagger_ui_bundle.swagger_ui_path)


def _page(title: str, assets: str) -> str:
    base = escape(assets.rstrip("/"), quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} - API docs</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: {json.dumps(OPENAPI_PATH)}, dom_id: "#swagger-ui",
  deepLinking: true}});
</script>
</body>
</html>
"""


def is_docs_route(fn: Any) -> bool:
    """Whether ``fn`` is one of the routes ``mount`` adds (left out of the document)."""
    return getattr(fn, "_polyserve_docs", False) is True


def mount(app: App) -> None:
    """Add ``GET /openapi.json`` and ``GET /docs`` (and the page's assets) to ``app``.

    The document is built on the first request and kept; the docs routes are left out
    of it.
    """
    cached: list[bytes] = []

    def openapi_json() -> HttpResponse:
        if not cached:
            cached.append(json.dumps(app.openapi()).encode())
        return HttpResponse.binary(cached[0], media_type="application/json")

    def docs_page() -> HttpResponse:
        assets = os.environ.get("POLYSERVE_DOCS_ASSETS") or _ASSETS
        if assets == _ASSETS and _bundled_folder() is None:
            raise HttpError(
                501,
                "docs_assets_missing",
                "the docs page needs Swagger UI's files: install polyserve-core[docs] "
                "or set POLYSERVE_DOCS_ASSETS to a URL that serves them",
            )
        return HttpResponse.text(_page(app.name, assets), media_type="text/html")

    def docs_asset(name: str) -> HttpResponse:
        folder = _bundled_folder()
        media_type = _FILES.get(name)
        if folder is None or media_type is None:
            raise HttpError(404, "not_found", f"no docs asset {name!r}")
        with open(os.path.join(folder, name), "rb") as f:
            body = f.read()
        headers = {"cache-control": "public, max-age=86400"}
        return HttpResponse.binary(body, headers=headers, media_type=media_type)

    for path, fn in (
        (OPENAPI_PATH, openapi_json),
        (DOCS_PATH, docs_page),
        (_ASSETS + "/{name}", docs_asset),
    ):
        setattr(fn, "_polyserve_docs", True)  # noqa: B010  # a function attribute
        app.add_route(path, fn, ["GET"], name=f"polyserve_{fn.__name__}")
