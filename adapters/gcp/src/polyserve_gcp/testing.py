"""Native Google Cloud events for tests: ``build("pubsub", data={"id": 1})`` or ``BUILDERS[kind]``.

Each builder returns the JSON document Google delivers: a structured-mode CloudEvent
(Eventarc), a Pub/Sub push envelope (an HTTP function's body), a background
``{"context", "data"}`` event (1st gen), or an HTTP request (``method``, ``url``,
``headers`` as an object, ``body`` text or ``bodyBase64``). Keyword overrides replace
the defaults named in the builder's signature; an unknown one raises ``TypeError``
naming them. ``Targets(app).call(event)`` hands an event to the functions-framework
target that receives it (``http``, ``cloudevent`` or ``background``) and returns its
answer: the ``flask.Response`` of an HTTP or push request, else ``None``.
"""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import flask

    from polyserve.app import App
    from polyserve.events import HttpRequest
    from polyserve.testing import TestResponse

__all__ = [
    "BUILDERS",
    "ClientTransport",
    "Targets",
    "build",
    "client_transport",
    "invoke",
    "kind_of",
]

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
    timestamp: str | None = _TIME,
) -> dict[str, Any]:
    """A 1st-gen background event for a Pub/Sub message (``{"context", "data"}``)."""
    return {
        "context": {
            "eventId": event_id,
            "timestamp": timestamp,
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


def http(
    method: str = "GET",
    path: str = "/",
    query: str | dict[str, str] = "",
    headers: dict[str, str] | None = None,
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
    host: str = "app-a1b2c3-ew.a.run.app",
    execution_id: str = "exec-1",
) -> dict[str, Any]:
    """An HTTP request to an HTTP function (``Function-Execution-Id`` and a forwarded client)."""
    text = query if isinstance(query, str) else urlencode(query)
    url = f"https://{host}{quote(path, safe='/%')}" + (f"?{text}" if text else "")
    hdrs = {
        "host": host,
        "function-execution-id": execution_id,
        "x-forwarded-for": "203.0.113.7",
    } | {k.lower(): v for k, v in (headers or {}).items()}
    event: dict[str, Any] = {"method": method.upper(), "url": url}
    if isinstance(body, (dict, list)):
        hdrs.setdefault("content-type", "application/json")
        body = json.dumps(body)
    event["headers"] = hdrs
    if isinstance(body, bytes):
        event["bodyBase64"] = base64.b64encode(body).decode()
    elif body:
        event["body"] = body
    return event


def _firestore_value(value: Any) -> dict[str, Any]:
    # A Firestore value in the JSON form of DocumentEventData.
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        return {
            "timestampValue": value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        }
    if isinstance(value, dict):
        return {"mapValue": {"fields": {k: _firestore_value(v) for k, v in value.items()}}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_firestore_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _document(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "fields": {k: _firestore_value(v) for k, v in fields.items()},
        "createTime": _TIME,
        "updateTime": _TIME,
    }


def _change(
    path: str, event_type: str, value: dict[str, Any] | None, old_value: dict[str, Any] | None
) -> dict[str, Any]:
    name = f"projects/{_PROJECT}/databases/(default)/documents/{path}"
    if value is None and event_type in ("created", "create", "written", "write"):
        value = {"name": "Rex"}
    if old_value is None and event_type in ("deleted", "delete", "updated", "update"):
        old_value = {"name": "Rex"}
    data: dict[str, Any] = {}
    if value is not None and event_type not in ("deleted", "delete"):
        data["value"] = _document(name, value)
    if old_value is not None and event_type not in ("created", "create"):
        data["oldValue"] = _document(name, old_value)
    return data


def firestore(
    document: str = "pets/rex",
    event_type: str = "written",
    value: dict[str, Any] | None = None,
    old_value: dict[str, Any] | None = None,
    event_id: str = "5e0a1c2d-0001",
) -> dict[str, Any]:
    """A Firestore document change as a JSON CloudEvent (``created``, ``updated``,
    ``deleted``, ``written``); ``value``/``old_value`` are plain Python values."""
    return {
        "specversion": "1.0",
        "type": f"google.cloud.firestore.document.v1.{event_type}",
        "source": f"//firestore.googleapis.com/projects/{_PROJECT}/databases/(default)",
        "subject": f"documents/{document}",
        "id": event_id,
        "time": _TIME,
        "datacontenttype": "application/json",
        "database": "(default)",
        "namespace": "(default)",
        "location": "europe-west1",
        "project": _PROJECT,
        "document": document,
        "data": _change(document, event_type, value, old_value),
    }


def scheduler_job(
    name: str = "nightly",
    data: str | bytes | dict[str, Any] | list[Any] = "",
    event_id: str = "7d1e3a90-0042",
) -> dict[str, Any]:
    """A Cloud Scheduler job run delivered by Eventarc (``job.v1.executed``)."""
    return {
        "specversion": "1.0",
        "type": "google.cloud.scheduler.job.v1.executed",
        "source": f"//cloudscheduler.googleapis.com/projects/{_PROJECT}/locations/"
        f"europe-west1/jobs/{name}",
        "id": event_id,
        "time": _TIME,
        "datacontenttype": "application/json",
        "data": {"customData": _data(data)},
    }


def legacy_storage(
    bucket: str = "uploads",
    name: str = "photo.png",
    event_type: str = "finalize",
    size: int = 1024,
    event_id: str = "1147091835525187",
) -> dict[str, Any]:
    """A 1st-gen background event for a Cloud Storage object (``finalize``, ``delete``, ...)."""
    data = storage(bucket=bucket, name=name, size=size)["data"]
    return {
        "context": {
            "eventId": event_id,
            "timestamp": _TIME,
            "eventType": f"google.storage.object.{event_type}",
            "resource": {
                "service": "storage.googleapis.com",
                "name": f"projects/_/buckets/{bucket}/objects/{name}",
                "type": "storage#object",
            },
        },
        "data": data,
    }


def legacy_firestore(
    document: str = "pets/rex",
    event_type: str = "write",
    value: dict[str, Any] | None = None,
    old_value: dict[str, Any] | None = None,
    event_id: str = "7b8f1e2a-d3c4-4b5a-9e6f-0a1b2c3d4e5f-0",
) -> dict[str, Any]:
    """A 1st-gen background event for a Firestore document (``create``, ``update``,
    ``delete``, ``write``)."""
    data = _change(document, event_type, value, old_value)
    return {
        "context": {
            "eventId": event_id,
            "timestamp": _TIME,
            "eventType": f"providers/cloud.firestore/eventTypes/document.{event_type}",
            "resource": f"projects/{_PROJECT}/databases/(default)/documents/{document}",
        },
        "data": {"oldValue": {}, **data, "updateMask": {}},
    }


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "http": http,
    "pubsub": pubsub,
    "pubsub_push": pubsub_push,
    "scheduler": scheduler,
    "scheduler_job": scheduler_job,
    "storage": storage,
    "firestore": firestore,
    "legacy_pubsub": legacy_pubsub,
    "legacy_storage": legacy_storage,
    "legacy_firestore": legacy_firestore,
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


def kind_of(event: object) -> str | None:
    """How ``event`` is delivered: ``http``, ``cloudevent``, ``push``, ``background`` or ``None``."""
    if not isinstance(event, dict):
        return None
    if "specversion" in event:
        return "cloudevent"
    if isinstance(event.get("message"), dict) and "subscription" in event:
        return "push"
    if isinstance(event.get("context"), dict) and "data" in event:
        return "background"
    if {"method", "url"} <= event.keys() and isinstance(event.get("headers"), dict):
        return "http"
    return None


class Targets:
    """The three functions-framework targets of one app, called as the framework calls them.

    ``options`` go to ``polyserve_gcp.http`` (``push_path``, ...); ``names`` to all three.
    """

    def __init__(self, app: App, *, names: Mapping[str, str] | None = None, **options: Any) -> None:
        import polyserve_gcp

        self.http = polyserve_gcp.http(app, names=names, **options)
        self.cloudevent = polyserve_gcp.cloudevent(app, names=names)
        self.background = polyserve_gcp.background(app, names=names)
        self._push_path = str(options.get("push_path", "/_pubsub"))

    def call(self, event: Mapping[str, Any]) -> flask.Response | None:
        """Deliver ``event``; return the HTTP target's ``flask.Response``, else ``None``.

        Raises:
            ValueError: ``event`` is none of the delivery formats.
            Exception: what an event target raised (functions-framework answers 500
                and the event is retried).
        """
        kind = kind_of(event)
        if kind == "cloudevent":
            from cloudevents.http import from_http

            body = json.dumps(event).encode()
            self.cloudevent(from_http({"content-type": "application/cloudevents+json"}, body))
            return None
        if kind == "background":
            # functions-framework's context class ships without type information.
            from google.cloud.functions.context import (  # type: ignore[import-untyped]
                Context,
            )

            self.background(event["data"], Context(**event["context"]))
            return None
        if kind == "push":
            request = {"method": "POST", "url": self._push_path, "headers": {}}
            return self._request(request, json.dumps(event).encode(), "application/json")
        if kind == "http":
            if "bodyBase64" in event:
                body = base64.b64decode(event["bodyBase64"])
            else:
                body = str(event.get("body", "")).encode()
            return self._request(event, body, None)
        raise ValueError(
            "not a Google Cloud event: expected a CloudEvent, a push envelope, a background "
            "event or an HTTP request (method, url, headers)"
        )

    def _request(
        self, event: Mapping[str, Any], body: bytes, content_type: str | None
    ) -> flask.Response:
        import flask
        from werkzeug.test import EnvironBuilder

        headers = dict(event["headers"])
        if content_type is not None:
            headers.setdefault("content-type", content_type)
        url = urlsplit(event["url"])
        target = url.path or "/"
        # gunicorn, which functions-framework runs under, passes the raw request target.
        builder = EnvironBuilder(
            path=target,
            base_url=f"{url.scheme}://{url.netloc}" if url.netloc else None,
            query_string=url.query,
            method=event["method"],
            headers=headers,
            data=body,
            environ_overrides={"RAW_URI": target + (f"?{url.query}" if url.query else "")},
        )
        with flask.Flask(__name__).request_context(builder.get_environ()) as context:
            return self.http(context.request)


# -- the hooks of polyserve.testing.TestClient(app, provider="gcp") and `polyserve invoke` --


def _answer(response: flask.Response) -> TestResponse:
    from polyserve.events import Headers
    from polyserve.testing import TestResponse

    pairs = [(k.lower(), v) for k, v in response.headers.items()]
    return TestResponse(response.status_code, Headers(pairs), response.get_data(), native=response)


class ClientTransport:
    """Sends a ``TestClient``'s requests and events through functions-framework's targets.

    ``http`` answers with a ``TestResponse`` whose ``native`` is the ``flask.Response``;
    queue messages go as Eventarc Pub/Sub CloudEvents and schedules as Cloud Scheduler
    job CloudEvents, returning ``None`` and raising what the handler raised.
    """

    def __init__(self, app: App) -> None:
        self.targets = Targets(app)

    def http(self, request: HttpRequest) -> TestResponse:
        # The WSGI server joins the values of a repeated header.
        headers = {k: ", ".join(v) for k, v in request.headers.to_multi_dict().items()}
        headers.setdefault("function-execution-id", request.request_id)
        event = http(
            method=request.method,
            path=request.path,
            query=request.query.to_string(),
            headers=headers,
            body=request.body,
        )
        response = self.targets.call(event)
        assert response is not None, "the HTTP target answers"
        return _answer(response)

    def queue(self, name: str, body: Any, overrides: Mapping[str, Any]) -> Any:
        return self.targets.call(build("pubsub", data=body or "", topic=name, **overrides))

    def schedule(self, name: str, overrides: Mapping[str, Any]) -> Any:
        return self.targets.call(build("scheduler_job", name=name, **overrides))

    def deliver(self, kind: str, overrides: Mapping[str, Any]) -> Any:
        return self.targets.call(build(kind, **overrides))


def client_transport(app: App) -> ClientTransport:
    """The transport ``polyserve.testing.TestClient(app, provider="gcp")`` sends through."""
    return ClientTransport(app)


def invoke(app: App, event: Mapping[str, Any]) -> Any:
    """Deliver ``event`` to the target of ``app`` that receives it; its answer as JSON.

    An HTTP or push request's answer is ``{"status", "headers", "body"}``
    (``bodyBase64`` when the body is not text); an event target's is ``None``.

    Raises:
        UnsupportedEventError: ``event`` is none of Google's delivery formats.
    """
    if kind_of(event) is None:
        from polyserve.errors import UnsupportedEventError

        raise UnsupportedEventError(
            "not a Google Cloud event: expected a CloudEvent, a push envelope, a background "
            "event or an HTTP request (method, url, headers)",
            description={"provider": "gcp"},
        )
    response = Targets(app).call(event)
    if response is None:
        return None
    out: dict[str, Any] = {
        "status": response.status_code,
        "headers": [[k.lower(), v] for k, v in response.headers.items()],
    }
    data = response.get_data()
    try:
        out["body"] = data.decode()
    except UnicodeDecodeError:
        out["bodyBase64"] = base64.b64encode(data).decode()
    return out
