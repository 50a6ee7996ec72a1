"""Pub/Sub messages: Eventarc CloudEvents, push requests and background events.

All three carry the same ``PubsubMessage`` JSON (``data`` in base64,
``attributes``, ``messageId``, ``publishTime``, ``orderingKey``), so they share
one reader. Who handles a message is decided in this order:

1. a schedule that claims the topic (see ``_scheduler``) -> ``ScheduleEvent``;
2. a topic registration named after the topic -> ``Message``;
3. a queue registration named after the subscription, then one named after the
   topic (a 2nd gen function reads its trigger topic through a subscription that
   Eventarc names itself, so ``@app.queue("orders")`` serves topic ``orders``);
4. the ``"*"`` topic registration, then the ``"*"`` queue registration.

Each name is the logical name: the ``names`` mapping applied to the resource
name or the short id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import Event, as_object, from_rfc3339, json_object, optional_text
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve_gcp import _scheduler
from polyserve_gcp._formats import decode_base64, last_segment
from polyserve_gcp._names import logical

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve import App
    from polyserve.context import Context
    from polyserve_gcp.types import CloudEventLike

__all__ = [
    "EVENT_TYPE",
    "LEGACY_EVENT_TYPES",
    "Source",
    "from_cloudevent",
    "is_push_envelope",
    "matches",
    "read_message",
    "route",
]

EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
LEGACY_EVENT_TYPES = frozenset(
    {"google.pubsub.topic.publish", "providers/cloud.pubsub/eventTypes/topic.publish"}
)
_SOURCE_PREFIX = "//pubsub.googleapis.com/"


def matches(event: CloudEventLike) -> bool:
    """Whether ``event`` is a Pub/Sub ``messagePublished`` CloudEvent."""
    return event.get_attributes().get("type") == EVENT_TYPE


def from_cloudevent(event: CloudEventLike, app: App, names: Mapping[str, str]) -> Event:
    """The message (or schedule) of a ``messagePublished`` CloudEvent.

    The topic comes from ``source`` (``//pubsub.googleapis.com/projects/P/topics/T``),
    the subscription and ``deliveryAttempt`` from ``data``.
    """
    attrs = event.get_attributes()
    data = json_object(event.get_data(), "Pub/Sub CloudEvent data")
    source = attrs.get("source")
    topic = None
    if isinstance(source, str) and source.startswith(_SOURCE_PREFIX):
        topic = source.removeprefix(_SOURCE_PREFIX)
    return route(
        app,
        names,
        as_object(data.get("message"), "Pub/Sub CloudEvent data.message"),
        topic=topic,
        subscription=optional_text(data, "subscription", "Pub/Sub CloudEvent data"),
        attempt=data.get("deliveryAttempt"),
        fallback_id=str(attrs.get("id") or ""),
        fallback_time=attrs.get("time"),
        raw=event,
    )


class Source:
    """Pub/Sub ``messagePublished`` CloudEvents for one app (a ``polyserve.adapter.Source``).

    Which handler a message goes to depends on the app's registrations (see
    ``route``), so the source is built per app.
    """

    __slots__ = ("_app",)

    is_http = False

    def __init__(self, app: App) -> None:
        self._app = app

    def matches(self, raw: CloudEventLike) -> bool:
        """Whether ``raw`` is a Pub/Sub ``messagePublished`` CloudEvent."""
        return matches(raw)

    def to_event(self, raw: CloudEventLike, context: Context, names: Mapping[str, str]) -> Event:
        """The message (or schedule) of the CloudEvent (``from_cloudevent``)."""
        return from_cloudevent(raw, self._app, names)

    def to_native(self, outcome: object, raw: CloudEventLike, context: Context) -> None:
        """Nothing: functions-framework answers 200 once the function returns."""
        return None


def is_push_envelope(body: Any) -> bool:
    """Whether a request body is a push subscription's ``{"message", "subscription"}`` JSON."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("message"), dict)
        and isinstance(body.get("subscription"), str)
    )


def _split(resource: str | None, collection: str) -> tuple[str | None, str | None]:
    """``(resource name, short id)`` from either form; a bare id has no resource name."""
    if not resource:
        return None, None
    if "/" not in resource:
        return None, resource
    return resource, last_segment(resource, collection)


def _pick(app: App, candidates: list[tuple[Trigger, str]]) -> tuple[Trigger, str] | None:
    for trigger, name in candidates:
        reg = app.find(trigger, name)
        if reg is not None and reg.name == name:
            return trigger, name
    for trigger, name in candidates:
        if app.find(trigger, name) is not None:
            return trigger, name
    return None


def route(
    app: App,
    names: Mapping[str, str],
    message: dict[str, Any],
    *,
    topic: str | None,
    subscription: str | None,
    attempt: Any,
    fallback_id: str,
    fallback_time: Any,
    raw: Any,
) -> Event:
    """Decide who handles ``message`` (see the module docstring) and decode it for them.

    ``topic`` and ``subscription`` are resource names or short ids, or ``None``
    where the delivery does not say.

    Raises:
        UnsupportedEventError: no registration matches the topic or the subscription.
        MalformedEventError: the message cannot be decoded.
    """
    topic_name, topic_id = _split(topic, "topics")
    sub_name, sub_id = _split(subscription, "subscriptions")
    topic_logical = logical(names, topic_name, topic_id) if topic_id else None
    sub_logical = logical(names, sub_name, sub_id) if sub_id else None

    def read(source: str) -> Message:
        return read_message(
            message, source=source, attempt=attempt, fallback_id=fallback_id,
            fallback_time=fallback_time, raw=raw,
        )  # fmt: skip

    if topic_id and topic_logical:
        schedule = _scheduler.schedule_for_topic(app, names, topic_name, topic_id)
        if schedule is not None:
            return _scheduler.from_message(read(topic_logical), schedule)
    candidates: list[tuple[Trigger, str]] = []
    if topic_logical:
        candidates.append((Trigger.TOPIC, topic_logical))
    if sub_logical:
        candidates.append((Trigger.QUEUE, sub_logical))
    if topic_logical:
        candidates.append((Trigger.QUEUE, topic_logical))
    picked = _pick(app, candidates)
    if picked is None:
        sources = [f"topic {topic_logical!r}"] if topic_logical else []
        sources += [f"subscription {sub_logical!r}"] if sub_logical else []
        raise UnsupportedEventError(
            f"no handler is registered for Pub/Sub {' or '.join(sources) or 'messages'}",
            description={"trigger": "topic", "topic": topic_logical, "subscription": sub_logical},
        )
    trigger, name = picked
    return Event(trigger, name, read(name))


def read_message(
    message: dict[str, Any],
    *,
    source: str,
    attempt: Any = None,
    fallback_id: str = "",
    fallback_time: Any = None,
    raw: Any = None,
) -> Message:
    """A ``Message`` from ``PubsubMessage`` JSON (camelCase or snake_case field names).

    ``fallback_id`` and ``fallback_time`` stand in for ``messageId`` and
    ``publishTime`` where the delivery keeps them outside the message (background
    events keep them in the context).
    """
    what = "Pub/Sub message"
    message_id = message.get("messageId") or message.get("message_id") or fallback_id
    if not isinstance(message_id, str) or not message_id:
        raise MalformedEventError(f"{what} has no messageId")
    published = message.get("publishTime") or message.get("publish_time") or fallback_time
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise MalformedEventError(f"{what} attributes must be an object of strings")
    data = message.get("data")
    ordering_key = message.get("orderingKey") or message.get("ordering_key") or None
    if ordering_key is not None and not isinstance(ordering_key, str):
        raise MalformedEventError(f"{what} orderingKey must be a string")
    return Message(
        id=message_id,
        body=decode_base64(data, f"{what} data") if data else b"",
        attributes=dict(attributes),
        attempt=_attempt(attempt),
        enqueued_at=from_rfc3339(published, f"{what} publishTime") if published else None,
        source=source,
        group_key=ordering_key,
        raw=raw,
    )


def _attempt(value: Any) -> int:
    """``deliveryAttempt`` (present only with a dead-letter policy), else 1."""
    if value is None or value == "":
        return 1
    if isinstance(value, bool):
        raise MalformedEventError("Pub/Sub deliveryAttempt must be a number")
    try:
        attempt = int(value)
    except (TypeError, ValueError):
        raise MalformedEventError("Pub/Sub deliveryAttempt must be a number") from None
    return max(attempt, 1)
