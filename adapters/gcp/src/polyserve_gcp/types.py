"""The shapes of what functions-framework hands a function, and of the targets.

functions-framework passes an HTTP function a ``flask.Request``, a CloudEvent
function a ``cloudevents.http.CloudEvent``, and a background (legacy) function
``(data, context)`` with a ``google.cloud.functions.Context``. The adapter reads
CloudEvents and background contexts only through the protocols below, so any
object of the same shape (a test double, a CloudEvent from another SDK) works
too; HTTP requests are Flask's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    import flask

__all__ = [
    "BackgroundFunction",
    "CloudEventFunction",
    "CloudEventLike",
    "HttpFunction",
    "LegacyContext",
]


class CloudEventLike(Protocol):
    """A CloudEvent as the ``cloudevents`` SDK models it: attributes plus ``data``.

    ``data`` is a decoded JSON value when the event carried JSON, ``bytes`` when
    it carried anything else (protobuf, binary), or ``None``.
    """

    def get_attributes(self) -> Mapping[str, Any]: ...

    def get_data(self) -> Any: ...


class LegacyContext(Protocol):
    """The context of a background (1st gen, "legacy") event.

    ``resource`` is a resource name, or for Pub/Sub and Cloud Storage an object
    with ``service``, ``name`` and ``type``.
    """

    @property
    def event_id(self) -> str: ...

    @property
    def timestamp(self) -> str: ...

    @property
    def event_type(self) -> str: ...

    @property
    def resource(self) -> Any: ...


HttpFunction = Callable[["flask.Request"], "flask.Response"]
"""The HTTP target ``polyserve_gcp.http`` returns (for ``--signature-type=http``)."""

CloudEventFunction = Callable[[CloudEventLike], Any]
"""The CloudEvent target ``polyserve_gcp.cloudevent`` returns (``--signature-type=cloudevent``)."""

BackgroundFunction = Callable[[Any, LegacyContext], Any]
"""The background target ``polyserve_gcp.background`` returns (``--signature-type=event``)."""
