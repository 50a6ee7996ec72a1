"""Native Azure Functions inputs for tests: ``build("queue", body="{}")`` or ``BUILDERS[kind]``.

A built event is the JSON document of what the Functions host sends the Python
worker for one trigger, in the form of the samples this adapter ships::

    {"binding": "queueTrigger", "data": <datum>, "metadata": {<name>: <datum>, ...},
     "target": "orders"}

where a datum is ``{"type": ..., "value": ...}`` (see ``datum``). ``native(event)``
turns it into what the worker passes a function (an ``azure.functions.QueueMessage``,
``HttpRequest``, ``EventGridEvent``, ...), through the worker library's own converters,
and ``FunctionHost(function_app(app)).call(event)`` invokes the generated function that
``target`` (the queue, topic/subscription, hub, container or schedule; the host does
not send it) names, as the worker does. Keyword overrides replace the defaults named in
the builder's signature; an unknown one raises ``TypeError`` naming them.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import azure.functions as func

    from polyserve.app import App
    from polyserve.events import HttpRequest
    from polyserve.testing import TestResponse

__all__ = [
    "BUILDERS",
    "ClientTransport",
    "FunctionHost",
    "InvocationContext",
    "build",
    "client_transport",
    "datum",
    "invoke",
    "native",
]

_TIME = "2024-06-03T09:41:07+00:00"
_Body = str | bytes | dict[str, Any] | list[Any]


def _bytes(body: _Body | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, (dict, list)):
        return json.dumps(body).encode()
    return body.encode() if isinstance(body, str) else bytes(body)


def _binary(body: _Body | None) -> dict[str, Any]:
    return {"type": "bytes", "value": base64.b64encode(_bytes(body)).decode(), "encoding": "base64"}


def _text(value: str) -> dict[str, Any]:
    return {"type": "string", "value": value}


def _int(value: int) -> dict[str, Any]:
    return {"type": "int", "value": value}


def _json(value: Any) -> dict[str, Any]:
    return {"type": "json", "value": value}


def http(
    method: str = "GET",
    path: str = "/",
    query: str | dict[str, str] = "",
    headers: dict[str, str] | None = None,
    body: _Body | None = None,
    host: str = "app.azurewebsites.net",
    route_prefix: str = "api",
) -> dict[str, Any]:
    """An HTTP request to the catch-all HTTP function (``route_prefix`` as in host.json)."""
    text = query if isinstance(query, str) else urlencode(query)
    prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""
    url = f"https://{host}{prefix}{quote(path, safe='/%')}" + (f"?{text}" if text else "")
    hdrs = {"host": host} | {k.lower(): v for k, v in (headers or {}).items()}
    if isinstance(body, (dict, list)):
        hdrs.setdefault("content-type", "application/json")
    # The worker keeps the last value of a repeated query parameter in `params`.
    params = dict(parse_qsl(text, keep_blank_values=True))
    return {
        "binding": "httpTrigger",
        "data": {
            "type": "http",
            "value": {
                "method": _text(method.upper()),
                "url": _text(url),
                "headers": {k: _text(v) for k, v in hdrs.items()},
                "query": {k: _text(v) for k, v in params.items()},
                "params": {"path": _text(path.lstrip("/"))},
                "body": _binary(body),
            },
        },
    }


def queue(
    body: _Body = "",
    queue: str = "orders",
    message_id: str = "6d1f2c3a-5e7b-4a90-8b21-0c3d4e5f6a7b",
    attempt: int = 1,
    insertion_time: str = _TIME,
) -> dict[str, Any]:
    """A Storage Queue message (``attempt`` is the host's ``DequeueCount``)."""
    return {
        "binding": "queueTrigger",
        "data": _binary(body),
        "metadata": {
            "Id": _text(message_id),
            "DequeueCount": _int(attempt),
            "InsertionTime": _text(insertion_time),
            "ExpirationTime": _text("2024-06-10T09:41:07+00:00"),
            "NextVisibleTime": _text("2024-06-03T09:51:07+00:00"),
            "PopReceipt": _text("AgAAAAMAAAAAAAAAbXcXkVC12gE="),
        },
        "target": queue,
    }


def _service_bus(
    body: _Body,
    message_id: str,
    attempt: int,
    enqueued_time: str,
    properties: dict[str, Any] | None,
    session_id: str | None,
    subject: str | None,
) -> dict[str, Any]:
    metadata = {
        "MessageId": _text(message_id),
        "DeliveryCount": _int(attempt),
        "EnqueuedTimeUtc": _text(enqueued_time),
        "SequenceNumber": _int(5012),
        "ApplicationProperties": _json(dict(properties or {})),
        "UserProperties": _json(dict(properties or {})),
    }
    if session_id is not None:
        metadata["SessionId"] = _text(session_id)
    if subject is not None:
        metadata["Subject"] = _text(subject)
    return {"binding": "serviceBusTrigger", "data": _binary(body), "metadata": metadata}


def servicebus(
    body: _Body = "",
    queue: str = "jobs",
    message_id: str = "c2a7e9d0b6f14e1f9a3b5c7d9e1f2a3b",
    attempt: int = 1,
    enqueued_time: str = "2024-06-03T09:41:07.5123456Z",
    properties: dict[str, Any] | None = None,
    session_id: str | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """A Service Bus queue message (``attempt`` is its ``DeliveryCount``)."""
    event = _service_bus(body, message_id, attempt, enqueued_time, properties, session_id, subject)
    return event | {"target": queue}


def servicebus_topic(
    body: _Body = "",
    topic: str = "events",
    subscription: str = "billing",
    message_id: str = "7f3e1d2c-invoice-42",
    attempt: int = 1,
    enqueued_time: str = "2024-06-03T10:00:00Z",
    properties: dict[str, Any] | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """A message of a Service Bus topic, received on ``subscription``."""
    event = _service_bus(body, message_id, attempt, enqueued_time, properties, None, subject)
    return event | {"target": f"{topic}/{subscription}"}


def eventgrid(
    data: Any = None,
    event_type: str = "Shop.Order.Placed",
    subject: str = "orders/1017",
    topic: str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/shop"
    "/providers/Microsoft.EventGrid/topics/orders",
    event_id: str = "0f6a2d1e-8c3b-4f59-9e27-5b6a7c8d9e0f",
    event_time: str = "2024-06-03T09:41:07.1234567Z",
) -> dict[str, Any]:
    """An event in the Event Grid schema (``event_type`` ``Microsoft.Storage.BlobCreated``, ...)."""
    return {
        "binding": "eventGridTrigger",
        "data": _json(
            {
                "id": event_id,
                "topic": topic,
                "subject": subject,
                "eventType": event_type,
                "eventTime": event_time,
                "data": {} if data is None else data,
                "dataVersion": "1.0",
                "metadataVersion": "1",
            }
        ),
    }


def eventgrid_cloudevent(
    data: Any = None,
    type: str = "shop.order.shipped",
    source: str = "/shop/orders",
    subject: str | None = "orders/1017",
    event_id: str = "b85d631a-101e-005a-02f2-cee7aa06f148",
    time: str = "2024-06-03T11:00:00Z",
) -> dict[str, Any]:
    """An event in the CloudEvents 1.0 schema, delivered by Event Grid."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type,
        "time": time,
        "datacontenttype": "application/json",
        "data": {} if data is None else data,
    }
    if subject is not None:
        event["subject"] = subject
    return {"binding": "eventGridTrigger", "data": _json(event)}


def eventhub(
    body: _Body = "",
    hub: str = "telemetry",
    sequence: int = 1207,
    partition_key: str | None = None,
    properties: dict[str, Any] | None = None,
    enqueued_time: str = "2024-06-03T09:41:07.123Z",
) -> dict[str, Any]:
    """An Event Hubs batch of one event."""
    system = {
        "SequenceNumber": sequence,
        "Offset": str(sequence * 64),
        "PartitionKey": partition_key,
        "EnqueuedTimeUtc": enqueued_time,
    }
    return {
        "binding": "eventHubTrigger",
        "data": {"type": "collection_bytes", "value": [base64.b64encode(_bytes(body)).decode()]},
        "metadata": {
            "SystemPropertiesArray": _json([system]),
            "PropertiesArray": _json([dict(properties or {})]),
            "PartitionContext": _json(
                {"EventHubName": hub, "ConsumerGroup": "$Default", "PartitionId": "0"}
            ),
        },
        "target": hub,
    }


def blob(
    content: _Body = "",
    container: str = "uploads",
    name: str = "photo.png",
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
    account: str = "shopfiles",
) -> dict[str, Any]:
    """A new or updated blob, as the blob trigger reads it."""
    raw = _bytes(content)
    return {
        "binding": "blobTrigger",
        "data": _binary(raw),
        "metadata": {
            "BlobTrigger": _text(f"{container}/{name}"),
            "Uri": _text(f"https://{account}.blob.core.windows.net/{container}/{quote(name)}"),
            "Properties": _json(
                {
                    "ContentLength": len(raw),
                    "ContentType": content_type,
                    "ETag": '"0x8DC83B2A7B9C3D4"',
                    "LastModified": _TIME,
                    "BlobType": "Block",
                }
            ),
            "Metadata": _json(dict(metadata or {})),
            "name": _text(name),
        },
        "target": container,
    }


def timer(
    name: str = "nightly",
    is_past_due: bool = False,
    last: str = "2024-06-03T02:55:00+00:00",
    next: str = "2024-06-03T03:00:00+00:00",
) -> dict[str, Any]:
    """A timer trigger firing for schedule ``name`` (``next`` is the occurrence it fires for)."""
    status = {"Last": last, "Next": next, "LastUpdated": last}
    return {
        "binding": "timerTrigger",
        "data": _json(
            {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status, "IsPastDue": is_past_due}
        ),
        "target": name,
    }


def cosmos(
    documents: list[dict[str, Any]] | None = None,
    container: str = "items",
) -> dict[str, Any]:
    """A Cosmos DB change feed batch (each document gets ``_ts``/``_lsn`` if it has none)."""
    docs = [{"id": "sku-200", "name": "Keyboard", "stock": 12}] if documents is None else documents
    changes = [{"_ts": 1717407379 + i, "_lsn": 88 + i} | dict(d) for i, d in enumerate(docs)]
    return {"binding": "cosmosDBTrigger", "data": _json(changes), "target": container}


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "http": http,
    "queue": queue,
    "servicebus": servicebus,
    "servicebus_topic": servicebus_topic,
    "eventgrid": eventgrid,
    "eventgrid_cloudevent": eventgrid_cloudevent,
    "eventhub": eventhub,
    "blob": blob,
    "timer": timer,
    "cosmos": cosmos,
}


def build(kind: str, **overrides: Any) -> dict[str, Any]:
    """The host document of ``kind`` (a key of ``BUILDERS``) with ``overrides`` applied."""
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise KeyError(f"unknown Azure event kind {kind!r}; known: {', '.join(BUILDERS)}") from None
    allowed = inspect.signature(builder).parameters
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"unknown override(s) {', '.join(unknown)} for {kind!r}; known: {', '.join(allowed)}"
        )
    return builder(**overrides)


# -- from the host's document to the worker's objects ---------------------------------


def datum(spec: Mapping[str, Any]) -> Any:
    """The worker's ``Datum`` for its JSON form ``{"type": ..., "value": ...}``.

    ``bytes`` values are text, or base64 with ``"encoding": "base64"``; ``json`` values are
    any JSON (serialised here, as the host sends a string); ``collection_bytes`` (base64),
    ``collection_string`` and ``collection_sint64`` take a list; ``http`` takes an object of
    datums, with ``headers``, ``query`` and ``params`` as objects of datums.
    """
    from azure.functions import meta

    kind = spec["type"]
    value: Any = spec.get("value")
    if kind == "bytes":
        raw = value if isinstance(value, str) else ""
        data = base64.b64decode(raw) if spec.get("encoding") == "base64" else raw.encode()
        return meta.Datum(data, "bytes")
    if kind == "json":
        return meta.Datum(value if isinstance(value, str) else json.dumps(value), "json")
    # The collections stand in for the host's protobuf messages, read by attribute.
    if kind == "collection_bytes":
        return meta.Datum(SimpleNamespace(bytes=[base64.b64decode(v) for v in value]), kind)
    if kind == "collection_string":
        return meta.Datum(SimpleNamespace(string=list(value)), kind)
    if kind == "collection_sint64":
        return meta.Datum(SimpleNamespace(sint64=[int(v) for v in value]), kind)
    if kind == "http":
        fields: dict[str, Any] = {}
        for name, item in value.items():
            if name in ("headers", "query", "params"):
                fields[name] = {k: datum(v) for k, v in item.items()}
            else:
                fields[name] = datum(item)
        return meta.Datum(fields, "http")
    return meta.Datum(value, kind)


def native(event: Mapping[str, Any]) -> Any:
    """What the worker passes a function for ``event`` (a built event or a shipped sample).

    Raises:
        ValueError: ``event`` is not a host document, or names an unknown binding.
    """
    from azure.functions import meta

    binding = event.get("binding") if isinstance(event, dict) else None
    if not isinstance(binding, str) or not isinstance(event.get("data"), dict):
        raise ValueError("not an Azure Functions host document: needs 'binding' and 'data'")
    get_registry: Any = meta.get_binding_registry  # untyped in azure-functions
    registry = get_registry()
    converter = registry.get(binding)
    if converter is None:
        raise ValueError(f"unknown Azure binding {binding!r}")
    metadata = {k: datum(v) for k, v in (event.get("metadata") or {}).items()}
    return converter.decode(datum(event["data"]), trigger_metadata=metadata)


class InvocationContext:
    """The worker's ``context`` argument, as far as polyserve reads it."""

    def __init__(
        self,
        invocation_id: str = "4b5c6d7e-1111-2222-3333-444455556666",
        function_name: str = "function",
        retry_count: int | None = None,
    ) -> None:
        self.invocation_id = invocation_id
        self.function_name = function_name
        self.function_directory = "/home/site/wwwroot"
        self.trace_context = None
        self.thread_local_storage = None
        # The worker's RetryContext, present when the function has a retry policy.
        self.retry_context = (
            None
            if retry_count is None
            else SimpleNamespace(retry_count=retry_count, max_retry_count=5, exception=None)
        )


_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def _target(name: str, trigger: Mapping[str, Any]) -> str | None:
    kind = trigger.get("type")
    if kind == "serviceBusTrigger" and "topicName" in trigger:
        return f"{trigger['topicName']}/{trigger.get('subscriptionName')}"
    if kind == "blobTrigger":
        return str(trigger.get("path", "")).split("/", 1)[0]
    if kind == "timerTrigger":
        return name.removeprefix("schedule_")
    for key in ("queueName", "eventHubName", "containerName", "topic"):
        if key in trigger:
            return str(trigger[key])
    return None


class FunctionHost:
    """Invokes the functions of a ``FunctionApp`` with host documents, as the worker does."""

    def __init__(self, function_app: func.FunctionApp) -> None:
        self._functions: list[tuple[str, str, str | None, Any]] = []
        for fn in function_app.get_functions():
            name = str(fn.get_function_name())
            bindings = json.loads(fn.get_function_json())["bindings"]
            trigger = next(b for b in bindings if str(b["type"]).endswith("Trigger"))
            self._functions.append((name, trigger["type"], _target(name, trigger), fn))

    @property
    def names(self) -> list[str]:
        """The function names, as the host lists them."""
        return [name for name, *_ in self._functions]

    def function_for(self, event: Mapping[str, Any]) -> str:
        """The name of the function that receives ``event``.

        Raises:
            LookupError: no function has the event's trigger and ``target``.
        """
        binding, target = event.get("binding"), event.get("target")
        found = [f for f in self._functions if f[1] == binding]
        if target is not None:
            wanted = str(target)
            if binding == "timerTrigger":
                wanted = _INVALID_NAME_CHARS.sub("_", wanted)
            found = [f for f in found if f[2] in (None, wanted)]
        if not found:
            raise LookupError(
                f"no function receives {binding} {target or ''}".rstrip()
                + f"; the app has {', '.join(self.names) or 'none'}"
            )
        return found[0][0]

    def call(
        self,
        event: Mapping[str, Any],
        *,
        invocation_id: str = "4b5c6d7e-1111-2222-3333-444455556666",
        retry_count: int | None = None,
    ) -> Any:
        """Run the function that receives ``event``; return what it returned (an ``HttpResponse``,
        ``None``), raising what it raised (the host would retry)."""
        name = self.function_for(event)
        fn = next(f for n, _, _, f in self._functions if n == name)
        context = InvocationContext(invocation_id, name, retry_count)
        return fn.get_user_function()(native(event), context)


# -- the hooks of polyserve.testing.TestClient(app, provider="azure") and `polyserve invoke` --


def _answer(result: Any) -> TestResponse | None:
    from polyserve.events import Headers
    from polyserve.testing import TestResponse

    if result is None:
        return None
    pairs = [(k.lower(), v) for k, v in result.headers.items()]
    if not any(k == "content-type" for k, _ in pairs):
        # What the worker sends for a response without a Content-Type header.
        pairs.append(("content-type", f"{result.mimetype}; charset={result.charset}"))
    return TestResponse(result.status_code, Headers(pairs), result.get_body(), native=result)


class ClientTransport:
    """Sends a ``TestClient``'s requests and events through ``function_app(app)``'s functions.

    ``http`` answers with a ``TestResponse`` whose ``native`` is the ``HttpResponse``;
    the event methods return what the function returned (``None``), raising what it raised.
    """

    def __init__(self, app: App) -> None:
        from polyserve_azure import function_app

        self.app = app
        self.host = FunctionHost(function_app(app))

    def http(self, request: HttpRequest) -> TestResponse:
        event = http(
            method=request.method,
            path=request.path,
            query=request.query.to_string(),
            # The host joins the values of a repeated header, as HTTP allows.
            headers={k: ", ".join(v) for k, v in request.headers.to_multi_dict().items()},
            body=request.body,
        )
        response = _answer(self.host.call(event, invocation_id=request.request_id))
        assert response is not None, "the HTTP function returns a response"
        return response

    def queue(self, name: str, body: Any, overrides: Mapping[str, Any]) -> Any:
        from polyserve.routing import Trigger

        reg = self.app.find(Trigger.QUEUE, name)
        if reg is not None and reg.options.get("service") == "servicebus":
            return self.host.call(build("servicebus", body=body, queue=name, **overrides))
        return self.host.call(build("queue", body=body, queue=name, **overrides))

    def schedule(self, name: str, overrides: Mapping[str, Any]) -> Any:
        return self.host.call(build("timer", name=name, **overrides))

    def deliver(self, kind: str, overrides: Mapping[str, Any]) -> Any:
        return self.host.call(build(kind, **overrides))


def client_transport(app: App) -> ClientTransport:
    """The transport ``polyserve.testing.TestClient(app, provider="azure")`` sends through."""
    return ClientTransport(app)


def invoke(app: App, event: Mapping[str, Any]) -> Any:
    """Run the function of ``function_app(app)`` that receives ``event``; its result as JSON.

    An HTTP function's answer is ``{"status", "headers", "body"}`` (``bodyBase64`` when
    the body is not text); an event function's is ``None``.

    Raises:
        UnsupportedEventError: ``event`` is not an Azure Functions host document, or no
            function of the app receives it.
    """
    from polyserve.errors import UnsupportedEventError
    from polyserve_azure import function_app

    host = FunctionHost(function_app(app))
    try:
        native(event)
        host.function_for(event)
    except (ValueError, LookupError) as exc:
        raise UnsupportedEventError(str(exc), description={"provider": "azure"}) from None
    response = _answer(host.call(event))
    if response is None:
        return None
    out: dict[str, Any] = {
        "status": response.status_code,
        "headers": response.headers.multi_items(),
    }
    try:
        out["body"] = response.content.decode()
    except UnicodeDecodeError:
        out["bodyBase64"] = base64.b64encode(response.content).decode()
    return out
