"""Messages whose fields raise when read, as a malformed record's do on a lazy adapter.

``polyserve_aws`` reads an SQS message's fields from its record when a handler asks
for them, so a malformed ``ApproximateReceiveCount`` raises only when ``attempt`` is
read, which may be after the handler has failed and the batch is deciding whether
the message is poison.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from polyserve import MalformedEventError, Message

__all__ = ["unreadable"]

_classes: dict[frozenset[str], type[Message]] = {}


def unreadable(message: Message, *fields: str) -> Message:
    """A copy of ``message`` whose ``fields`` raise ``MalformedEventError`` when read."""
    broken = frozenset(fields)
    cls = _classes.get(broken)
    if cls is None:

        def __getattribute__(self: Message, name: str) -> Any:
            if name in broken:
                raise MalformedEventError(f"malformed record: {name} cannot be read")
            return object.__getattribute__(self, name)

        namespace = {"__slots__": (), "__getattribute__": __getattribute__}
        cls = _classes[broken] = type(
            f"Unreadable{'_'.join(sorted(broken))}", (Message,), namespace
        )
    values = {f.name: getattr(message, f.name) for f in dataclasses.fields(Message)}
    copy: Message = cls(**values)
    return copy
