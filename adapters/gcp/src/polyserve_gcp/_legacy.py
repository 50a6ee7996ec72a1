"""The background-function entry point: 1st gen ``(data, context)`` events.

``background(app)`` returns the function functions-framework calls as
``function(data, context)`` (``--signature-type=event``). ``context`` has
``event_id``, ``timestamp``, ``event_type`` and ``resource``:

==============================================  ==============================
``event_type``                                  becomes
==============================================  ==============================
``google.pubsub.topic.publish``                 ``Message`` (or ``ScheduleEvent``)
``providers/cloud.pubsub/eventTypes/...``       the same
``google.storage.object.finalize`` (and         ``StorageEvent``
``delete``, ``archive``, ``metadataUpdate``,
``providers/cloud.storage/.../object.change``)
``providers/cloud.firestore/eventTypes/         ``StreamRecord``
document.create`` (``update``, ``delete``,
``write``)
anything else (Firebase, Analytics, ...)        ``CloudEvent`` with that ``type``
==============================================  ==============================

A type of the last row that no ``@app.cloudevent`` registration takes goes to the
app's ``@app.native()`` handler as the ``(data, context)`` pair, and the function
returns its result unchanged.

The Pub/Sub message id and publish time come from the context (``event_id``,
``timestamp``); the topic from ``resource``. The typed event's ``raw`` is the
``(data, context)`` pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import Event, as_object, from_rfc3339, json_object, run, run_native
from polyserve.errors import EventError, MalformedEventError, PolyserveError
from polyserve.events import CloudEvent, StorageAction
from polyserve.routing import Trigger
from polyserve_gcp import _firestore, _pubsub, _storage
from polyserve_gcp._context import DEFAULT_TIMEOUT, make_context
from polyserve_gcp._formats import last_segment
from polyserve_gcp._names import Names
from polyserve_gcp._native import PROVIDER, UnclaimedEventError, claim
from polyserve_gcp._problem import answer_event_errors

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve import App
    from polyserve.context import Context
    from polyserve_gcp.types import BackgroundFunction, LegacyContext

__all__ = ["BackgroundSource", "background", "read_event"]


def background(
    app: App, *, names: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> BackgroundFunction:
    """A functions-framework background function that runs ``app``'s event handlers.

    Arguments, return and errors are those of ``polyserve_gcp.cloudevent``.
    """
    source = BackgroundSource(app, Names(names or {}))
    mapping = dict(names or {})
    answer_event_errors()

    def handle_background(data: Any, context: LegacyContext) -> Any:
        event_id = str(getattr(context, "event_id", "") or "")
        ctx = make_context(app, event_id, timeout, context)
        try:
            try:
                return run(app, source, (data, context), ctx, mapping)
            except UnclaimedEventError as unclaimed:
                return run_native(app, PROVIDER, (data, context), ctx, unclaimed)
        except EventError as exc:
            ctx.logger.warning(
                "event rejected",
                code=exc.code,
                detail=exc.detail,
                type=getattr(context, "event_type", None),
            )
            raise

    return handle_background


class BackgroundSource:
    """1st gen background events, ``(data, context)`` pairs, as one ``Source`` for ``run``."""

    __slots__ = ("_app", "_names")

    is_http = False

    def __init__(self, app: App, names: Names) -> None:
        self._app = app
        self._names = names

    def matches(self, raw: tuple[Any, LegacyContext]) -> bool:
        """Every background event: types without a mapping become CloudEvents."""
        return True

    def to_event(
        self, raw: tuple[Any, LegacyContext], context: Context, names: Mapping[str, str]
    ) -> Event:
        """The typed event and its registration."""
        data, native = raw
        request = _translated(data, native, self._app, self._names)
        if request.trigger is Trigger.CLOUDEVENT:
            claim(self._app, request)
        return request

    def to_native(self, outcome: Any, raw: tuple[Any, LegacyContext], context: Context) -> None:
        """Nothing: functions-framework answers 200 once the function returns."""
        return None


def _translated(data: Any, context: LegacyContext, app: App, names: Names) -> Event:
    try:
        return read_event(data, context, app, names)
    except PolyserveError:
        raise
    except Exception as exc:
        # The last guard: a context object of an unexpected shape is a malformed event.
        raise MalformedEventError(f"cannot read the background event: {exc!r}") from exc


def _resource_name(resource: Any) -> str:
    if isinstance(resource, dict):
        resource = resource.get("name")
    if not isinstance(resource, str):
        raise MalformedEventError("background event context has no resource name")
    return resource


def read_event(data: Any, context: LegacyContext, app: App, names: Names) -> Event:
    """The typed event for a background event and the registration it goes to."""
    event_type = context.event_type
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEventError("background event context has no event_type")
    event_id = str(context.event_id or "")
    timestamp = context.timestamp or None
    raw = (data, context)
    if event_type in _pubsub.LEGACY_EVENT_TYPES:
        message = json_object(data, "Pub/Sub background event data")
        return _pubsub.route(
            app, names, message, topic=_resource_name(context.resource), subscription=None,
            attempt=None, fallback_id=event_id, fallback_time=timestamp, raw=raw,
        )  # fmt: skip
    if event_type in _storage.LEGACY_ACTIONS or event_type == _storage.OBJECT_CHANGE:
        obj = json_object(data, "Cloud Storage background event data")
        action = _storage.LEGACY_ACTIONS.get(event_type)
        if action is None:
            gone = obj.get("resourceState") == "not_exists"
            action = StorageAction.DELETED if gone else StorageAction.CREATED
        resource = _resource_name(context.resource)
        bucket = last_segment(resource.split("/objects/", 1)[0], "buckets")
        return _storage.read_object(
            obj, action, names, bucket=bucket, key=None, event_id=event_id, time=timestamp,
            raw=raw,
        )  # fmt: skip
    kind = _firestore.LEGACY_KINDS.get(event_type)
    if kind is not None:
        resource = _resource_name(context.resource)
        path = resource.split("/documents/", 1)[1] if "/documents/" in resource else None
        return _firestore.read_change(
            json_object(data, "Firestore background event data"), kind, names, path=path,
            event_id=event_id, time=timestamp, raw=raw,
        )  # fmt: skip
    return _generic(data, context, event_type, event_id, timestamp, raw)


def _generic(
    data: Any,
    context: LegacyContext,
    event_type: str,
    event_id: str,
    timestamp: str | None,
    raw: Any,
) -> Event:
    resource = context.resource
    source = resource if isinstance(resource, str) else None
    if isinstance(resource, dict):
        source = as_object(resource, "background event resource").get("name")
    typed = CloudEvent(
        id=event_id,
        source=str(source or ""),
        type=event_type,
        time=from_rfc3339(timestamp, "background event timestamp") if timestamp else None,
        datacontenttype="application/json" if isinstance(data, (dict, list)) else None,
        data=data,
        raw=raw,
    )
    return Event(Trigger.CLOUDEVENT, event_type, typed)
