"""The fastapi-shop on Cloudflare Python Workers: ``main`` in ``wrangler.toml``.

The runtime looks for a ``WorkerEntrypoint`` subclass named ``Default`` in this
module and calls its ``fetch`` (HTTP), ``queue`` (the ``orders`` queue) and
``scheduled`` (the ``0 3 * * *`` Cron Trigger of ``restock``) methods.
"""

from __future__ import annotations

from fastapi_shop.app import app

from polyserve_cloudflare import entrypoint

Default = entrypoint(app)
