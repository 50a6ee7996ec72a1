"""The petstore on Cloudflare Python Workers: ``main`` in ``wrangler.toml``.

The runtime looks for a ``WorkerEntrypoint`` subclass named ``Default`` in this
module and calls its ``fetch`` (HTTP), ``queue`` (the ``adoptions`` queue) and
``scheduled`` (the ``0 3 * * *`` Cron Trigger of ``nightly-report``) methods.
"""

from __future__ import annotations

from petstore.app import app

from polyserve_cloudflare import entrypoint

Default = entrypoint(app)
