"""Native Google Cloud events for tests: ``build("pubsub", data={"id": 1})`` or ``BUILDERS[kind]``.

Each builder returns the JSON document Google delivers: a structured-mode CloudEvent
(Eventarc), a Pub/Sub push envelope (an HTTP function's body) or a background
``{"context", "data"}`` event (1st gen). Keyword overrides replace the defaults
named in the builder's signature; an unknown one raises ``TypeError`` naming them.
"""

from __future__ import annotations

import base64
import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BUILDERS", "build"]

_PROJECT = "my-project"
_TIME = "2024-05-01T10:00:00.250Z"


def _data(data: str | bytes | dict[str, Any] | list[Any]) -> str:
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _message(
    data: str | bytes | dict[str, Any] | list[Any],
    message_id: str,
    attributes: dict[str, str],
    publish_time: str | None = _TIME,
    ordering_key: str | None = None,
) -> dict[str, Any]:
    message = {
        "data": _data(data),
        "attributes": dict(attributes),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    }
    if ordering_key:
        message["orderingKey"] = ordering_key
    return message


def pubsub(
    data: str | bytes | dict[str, Any] | list[Any] = "",
    topic: str = "orders",
    message_id: str = "1001",
    attributes: dict[str, str] | None = None,
    attempt: int = 1,
    publish_time: str | None = _TIME,
    ordering_key: str | None = None,
    subscription: str | None = None,
) -> dict[str, Any]:
    """A Pub/Sub message as the Eventarc CloudEvent ``messagePublished``."""
    return {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/projects/{_PROJECT}/topics/{topic}",
        "id": message_id,
        "time": _TIME,
        "datacontenttype": "application/json",
        "data": {
            "message": _message(data, message_id, attributes or {}, publish_time, ordering_key),
            "subscription": f"projects/{_PROJECT}/subscriptions/"
            + (subscription or f"eventarc-{topic}-sub"),
            "deliveryAttempt": attempt,
        },
    }


def pubsub_push(
    data: str | bytes | dict[str, Any] | list[Any] = "",
    subscription: str = "orders-push",
    message_id: str = "1001",
    attributes: dict[str, str] | None = None,
    attempt: int = 1,
    publish_time: str | None = _TIME,
    ordering_key: str | None = None,
) -> dict[str, Any]:
    """A Pub/Sub push subscription's request body."""
    return {
        "message": _message(data, message_id, attributes or {}, publish_time, ordering_key),
        "subscription": f"projects/{_PROJECT}/subscriptions/{subscription}",
        "deliveryAttempt": attempt,
    }


def scheduler(name: str = "nightly", message_id: str = "9001") -> dict[str, Any]:
    """A Cloud Scheduler job's tick, published to the Pub/Sub topic named after the schedule."""
    event = pubsub(data={}, topic=name, message_id=message_id)
    del event["data"]["deliveryAttempt"]
    message = event["data"]["message"]
    for key in ("attributes", "message_id", "publish_time"):  # a scheduler tick sends none
        del message[key]
    return event


def storage(
    bucket: str = "uploads",
    name: str = "photo.png",
    event_type: str = "finalized",
    size: int = 1024,
    content_type: str = "image/png",
    generation: str = "1714557600123456",
) -> dict[str, Any]:
    """A Cloud Storage object CloudEvent (``finalized``, ``deleted``, ``archived``, ``metadataUpdated``)."""
    return {
        "specversion": "1.0",
        "type": f"google.cloud.storage.object.v1.{event_type}",
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "subject": f"objects/{name}",
        "id": generation,
        "time": _TIME,
        "datacontenttype": "application/json",
        "data": {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/{generation}",
            "name": name,
            "bucket": bucket,
            "generation": generation,
            "metageneration": "1",
            "contentType": content_type,
            "timeCreated": _TIME,
            "updated": _TIME,
            "storageClass": "STANDARD",
            "size": str(size),
            "md5Hash": "XrY7u+Ae7tCTyyK7j1rNww==",
            "etag": "CMDm0Yz8/4UDEAE=",
        },
    }


def legacy_pubsub(
    data: str | bytes | dict[str, Any] | list[Any] = "",
    topic: str = "orders",
    event_id: str = "1001",
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A 1st-gen background event for a Pub/Sub message (``{"context", "data"}``)."""
    return {
        "context": {
            "eventId": event_id,
            "timestamp": _TIME,
            "eventType": "google.pubsub.topic.publish",
            "resource": {
                "service": "pubsub.googleapis.com",
                "name": f"projects/{_PROJECT}/topics/{topic}",
                "type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
            },
        },
        "data": {
            "@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
            "attributes": dict(attributes or {}),
            "data": _data(data),
        },
    }


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "pubsub": pubsub,
    "pubsub_push": pubsub_push,
    "scheduler": scheduler,
    "storage": storage,
    "legacy_pubsub": legacy_pubsub,
}


def build(kind: str, **overrides: Any) -> dict[str, Any]:
    """The native event of ``kind`` (a key of ``BUILDERS``) with ``overrides`` applied."""
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise KeyError(f"unknown GCP event kind {kind!r}; known: {', '.join(BUILDERS)}") from None
    allowed = inspect.signature(builder).parameters
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"unknown override(s) {', '.join(unknown)} for {kind!r}; known: {', '.join(allowed)}"
        )
    return builder(**overrides)
