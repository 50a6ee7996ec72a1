"""Every trigger without a cloud: ``polyserve serve`` runs schedules and delivers messages.

``LocalServer(app)`` is an ASGI application that serves ``app`` and, under
``/_polyserve/``, accepts events for its registrations::

    POST /_polyserve/queues/{name}        the body is the message
    POST /_polyserve/topics/{name}        the body is the message
    POST /_polyserve/storage/{name}       {"key": "a.png", "action": "created", "size": 3}
    POST /_polyserve/streams/{name}       {"change": "insert", "keys": {...}, "new": {...}}
    POST /_polyserve/cloudevents/{name}   {"type": "...", "source": "...", "data": ...}
    POST /_polyserve/schedules/{name}     fire a schedule now
    GET  /_polyserve/messages             pending and set-aside messages

Deliveries follow the clouds' rules: a failed delivery is redelivered with backoff
(the ``Retry`` delay when the handler gave one), its attempt counted, until it
succeeds or the registration's ``max_attempts`` sets it aside (``on_poison`` runs).
Schedules fire on their cron in local time. State lives in memory, or in the SQLite
file given as ``state``, where it survives a restart.

What the app sends with ``app.queue_out(name)`` / ``app.topic_out(name)`` is delivered
the same way to its ``@app.queue(name)`` / ``@app.topic(name)`` handler, when the
outbound backend is the in-memory one: ``polyserve serve`` configures it unless
``POLYSERVE_OUTBOUND`` or ``polyserve.outbound.configure`` chose another.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from polyserve.local._server import LocalServer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from polyserve.outbound import MemoryBackend

__all__ = ["LocalServer", "local_outbound", "serving"]


def local_outbound() -> MemoryBackend | None:
    """The memory backend a local run delivers from (``memory_in_use``): ``None`` when
    another backend was chosen, whose sends then go where it sends them."""
    from polyserve.outbound.memory import memory_in_use

    return memory_in_use()


def serving(
    app: object,
    target: str,
    app_dir: str,
    state: str | None,
    *,
    reload: bool,
    fire: Sequence[str] = (),
) -> tuple[object, bool]:
    """What ``polyserve serve`` gives uvicorn: ``(application or factory path, is_factory)``.

    A polyserve ``App`` is served with its local triggers; another ASGI application as is.
    """
    from polyserve.app import App

    if not isinstance(app, App):
        return (target if reload else app), False
    if not reload:
        return LocalServer(app, state=state, fire=fire, outbound=local_outbound()), False
    # The worker process --reload starts builds its own server from these.
    os.environ["POLYSERVE_LOCAL_APP"] = target
    os.environ["POLYSERVE_LOCAL_DIR"] = app_dir
    os.environ["POLYSERVE_LOCAL_STATE"] = state or ""
    os.environ["POLYSERVE_LOCAL_FIRE"] = ",".join(fire)
    return "polyserve.local._server:create", True
