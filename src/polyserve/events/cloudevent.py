"""CloudEvents, specification 1.0."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from polyserve._frozen import fast_init
from polyserve.events._body import parse_json

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

__all__ = ["CloudEvent"]


@fast_init
@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A CloudEvent (spec 1.0). ``data`` is bytes, text or a decoded JSON value.

    ``extensions`` holds every attribute the spec does not define.
    """

    id: str
    source: str
    type: str
    specversion: str = "1.0"
    subject: str | None = None
    time: dt.datetime | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    extensions: Mapping[str, Any] = field(default_factory=dict)
    raw: Any = field(default=None, compare=False, repr=False)

    def json(self) -> Any:
        """``data`` as a JSON value, parsing it if it arrived as bytes or text."""
        if isinstance(self.data, (bytes, bytearray, str)):
            return parse_json(self.data, "CloudEvent data")
        return self.data
