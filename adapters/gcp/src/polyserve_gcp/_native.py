"""The escape hatch on GCP: events of a type nothing else takes go to ``@app.native()``.

Every CloudEvent and background event is recognised (a type without a module of
its own becomes a ``polyserve.CloudEvent``), so here an event is *unclaimed* when
no ``@app.cloudevent`` registration takes its type either. The entry points then
hand it to ``@app.native("gcp")`` (or ``"*"``) in the form functions-framework
gave it: the SDK's ``CloudEvent``, or the background ``(data, context)`` pair.
"""

from __future__ import annotations

from polyserve.errors import UnsupportedEventError
from polyserve.routing import Trigger

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from polyserve import App
    from polyserve.adapter import Event

__all__ = ["PROVIDER", "UnclaimedEventError", "claim"]

PROVIDER = "gcp"
"""The provider name ``@app.native("gcp")`` takes events from."""


class UnclaimedEventError(UnsupportedEventError):
    """An event of a type no module claims and no ``@app.cloudevent`` registration takes.

    The entry points catch it and hand the event to ``@app.native()``; without a
    native handler it reaches the caller as the ``UnsupportedEventError`` it is.
    """


def claim(app: App, request: Event) -> None:
    """Raise ``UnclaimedEventError`` unless ``app`` has a registration for ``request``'s type."""
    if app.find(Trigger.CLOUDEVENT, request.name) is None:
        raise UnclaimedEventError(
            f"no handler registered for cloudevent {request.name!r}",
            description={"trigger": Trigger.CLOUDEVENT.value, "name": request.name},
        )
