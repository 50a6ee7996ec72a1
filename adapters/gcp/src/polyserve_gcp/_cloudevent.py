"""The CloudEvent entry point, and CloudEvents of every type no other module claims.

``cloudevent(app)`` returns the function functions-framework calls with one
``cloudevents.http.CloudEvent`` (``--signature-type=cloudevent``; 2nd gen
event-triggered functions). The event goes to the first module that matches:
Pub/Sub (``_pubsub``), Cloud Storage (``_storage``), Firestore
(``_firestore``), Firebase Realtime Database (``_firebase_database``), Cloud
Scheduler (``_scheduler_cloudevent``), Kafka (``_kafka``); any other type (Eventarc audit logs, Firebase, custom
events) becomes a ``polyserve.CloudEvent`` for the ``Trigger.CLOUDEVENT``
registration of that ``type``, or the ``"*"`` one. A type no module claims and no
``@app.cloudevent`` registration takes goes to the app's ``@app.native()`` handler
as the SDK's ``CloudEvent`` object, and the function returns its result unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from polyserve.adapter import Event, from_rfc3339, optional_text, run, run_native, text
from polyserve.errors import EventError, MalformedEventError, PolyserveError
from polyserve.events import CloudEvent
from polyserve.routing import Trigger
from polyserve_gcp import (
    _firebase_database,
    _firestore,
    _kafka,
    _pubsub,
    _scheduler_cloudevent,
    _storage,
)
from polyserve_gcp._context import DEFAULT_TIMEOUT, make_context
from polyserve_gcp._names import Names
from polyserve_gcp._native import PROVIDER, UnclaimedEventError, claim
from polyserve_gcp._problem import answer_event_errors

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve import App
    from polyserve.adapter import Source
    from polyserve.context import Context
    from polyserve_gcp.types import CloudEventFunction, CloudEventLike

__all__ = ["CloudEventSource", "cloudevent", "is_http", "matches", "to_event", "to_native"]

# Attributes the CloudEvents 1.0 spec defines; every other one is an extension.
_SPEC_ATTRIBUTES = frozenset(
    {"id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema",
     "data", "data_base64"}
)  # fmt: skip


def cloudevent(
    app: App, *, names: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> CloudEventFunction:
    """A functions-framework CloudEvent function that runs ``app``'s event handlers.

    Args:
        app: the application.
        names: native source id -> logical registration name (topic, subscription,
            bucket or collection ids, short or full resource names).
        timeout: the function's timeout in seconds, for ``ctx.deadline`` when
            ``FUNCTION_TIMEOUT_SEC`` is not set.

    The function returns ``None`` when the handler succeeds (functions-framework
    answers 200; a ``@app.native()`` handler's result is returned as it is, and
    ignored by functions-framework) and raises when it fails, so the platform retries the event when
    the trigger has retries enabled. An event nobody handles raises
    ``UnsupportedEventError``, a broken one ``MalformedEventError``; under
    functions-framework both are answered with 400 instead of 500.
    """
    mapping = Names(names or {})
    source = CloudEventSource(app)
    answer_event_errors()

    def handle_cloudevent(event: CloudEventLike) -> Any:
        attrs = event.get_attributes()
        ctx = make_context(app, str(attrs.get("id") or ""), timeout, event)
        try:
            try:
                return run(app, source, event, ctx, mapping)
            except UnclaimedEventError as unclaimed:
                return run_native(app, PROVIDER, event, ctx, unclaimed)
        except EventError as exc:
            ctx.logger.warning(
                "event rejected", code=exc.code, detail=exc.detail, type=attrs.get("type")
            )
            raise

    return handle_cloudevent


class CloudEventSource:
    """Every CloudEvent, as one ``polyserve.adapter.Source`` for ``run``.

    It hands the event to the first family source that matches it (Pub/Sub, Cloud
    Storage, Firestore, Realtime Database, Cloud Scheduler, Kafka), else makes it a
    ``polyserve.CloudEvent`` (this module's ``to_event``). Pub/Sub picks its
    handler among the app's registrations, so the source is built per app.
    """

    __slots__ = ("_app", "_families")

    is_http = False

    def __init__(self, app: App) -> None:
        self._app = app
        # The family modules implement Source with module-level functions.
        families: tuple[Any, ...] = (
            _pubsub.Source(app), _storage, _firestore, _firebase_database,
            _scheduler_cloudevent, _kafka,
        )  # fmt: skip
        self._families: tuple[Source, ...] = families

    def matches(self, raw: CloudEventLike) -> bool:
        """Every CloudEvent: types no family claims become ``polyserve.CloudEvent``."""
        return True

    def to_event(self, raw: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
        """The typed event and its registration.

        Raises:
            MalformedEventError: the event is recognised but cannot be read.
            UnsupportedEventError: no registration matches (Pub/Sub decides this early).
            UnclaimedEventError: no family claims the type and no ``@app.cloudevent``
                registration takes it.
        """
        try:
            for family in self._families:
                if family.matches(raw):
                    request = family.to_event(raw, context, names)
                    assert isinstance(request, Event)  # CloudEvent families give one event
                    return request
            request = to_event(raw, context, names)
            claim(self._app, request)
            return request
        except PolyserveError:
            raise
        except Exception as exc:
            # The modules read fields through typed readers; this is the last guard,
            # so an SDK object of an unexpected shape still fails as a malformed event.
            raise MalformedEventError(f"cannot read the CloudEvent: {exc!r}") from exc

    def to_native(self, outcome: Any, raw: CloudEventLike, context: Context) -> None:
        """Nothing: functions-framework answers 200 once the function returns."""
        return None


is_http = False


def matches(event: CloudEventLike) -> bool:
    """Every CloudEvent matches: this module takes the types no other module claims."""
    return True


def to_event(event: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
    """A ``polyserve.CloudEvent`` for the registration named by its ``type``."""
    attrs = event.get_attributes()
    what = "CloudEvent"
    event_type = text(attrs, "type", what)
    when = attrs.get("time")
    if isinstance(when, dt.datetime):
        time: dt.datetime | None = when
    else:
        time = from_rfc3339(when, "CloudEvent time") if when else None
    typed = CloudEvent(
        id=text(attrs, "id", what),
        source=text(attrs, "source", what),
        type=event_type,
        specversion=str(attrs.get("specversion") or "1.0"),
        subject=optional_text(attrs, "subject", what),
        time=time,
        datacontenttype=optional_text(attrs, "datacontenttype", what),
        dataschema=optional_text(attrs, "dataschema", what),
        data=event.get_data(),
        extensions={k: v for k, v in attrs.items() if k not in _SPEC_ATTRIBUTES},
        raw=event,
    )
    return Event(Trigger.CLOUDEVENT, event_type, typed)


def to_native(outcome: Any, raw: CloudEventLike, context: Context) -> None:
    """Nothing: functions-framework answers 200 once the function returns."""
    return None
