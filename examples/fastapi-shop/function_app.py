"""Azure Functions entry point: the worker indexes the module-level ``app``.

Deploy this folder with ``func azure functionapp publish <name>``; host.json keeps
the default ``api`` route prefix, as ``polyserve_azure.function_app`` expects.
"""

from __future__ import annotations

from fastapi_shop.app import app as shop_app

import polyserve_azure

app = polyserve_azure.function_app(shop_app)
