"""Cloudflare Python Workers adapter for polyserve.

``Default = entrypoint(app)`` in a Worker's main module serves HTTP requests,
Cron Triggers and Queues messages with ``app``'s handlers. The runtime's
JavaScript objects are typed in ``polyserve_cloudflare.types``.
"""

from __future__ import annotations

from polyserve_cloudflare._entry import Entrypoint, Handlers, entrypoint, handlers
from polyserve_cloudflare._worker import Worker, WorkerContext

__all__ = ["Entrypoint", "Handlers", "Worker", "WorkerContext", "entrypoint", "handlers"]
