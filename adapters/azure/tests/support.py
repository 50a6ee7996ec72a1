"""Helpers for the Azure adapter tests: real ``azure.functions`` objects, built the way the
worker builds them (through its own converters), and a look at generated functions."""

from __future__ import annotations

import base64
import inspect
import json
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions import meta

from polyserve import StorageAction, Trigger
from polyserve_azure import testing
from polyserve_testkit.recorder import ALL_METHODS, Recorder

if typing.TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

EVENTS = Path(__file__).parent / "events"


class InvocationContext(func.Context):
    """A concrete ``azure.functions.Context``, as the worker passes to a ``context`` parameter."""

    def __init__(
        self,
        invocation_id: str = "4b5c6d7e-1111-2222-3333-444455556666",
        retry_count: int | None = None,
    ) -> None:
        self._invocation_id = invocation_id
        self._retry_count = retry_count

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def function_name(self) -> str:
        return "generated"

    @property
    def function_directory(self) -> str:
        return "/home/site/wwwroot"

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        # The worker's RetryContext, present when the function has a retry policy.
        if self._retry_count is None:
            return None
        return SimpleNamespace(retry_count=self._retry_count, max_retry_count=5, exception=None)


def recording_app() -> Recorder:
    """An app with a catch-all route, a queue ``orders``, a topic ``events`` (subscription
    ``billing``), a Service Bus queue ``jobs``, an Event Hub ``telemetry``, a Cosmos container
    ``items``, a blob container ``uploads``, a schedule ``tick`` and every CloudEvent type."""
    recorder = Recorder()
    app, on_event = recorder.app, recorder.event
    app.add_route("/{rest:path}", recorder.request, ALL_METHODS)
    app.register(Trigger.QUEUE, "orders", on_event)
    app.register(Trigger.QUEUE, "jobs", on_event, service="servicebus")
    app.register(Trigger.TOPIC, "events", on_event, subscription="billing")
    app.register(Trigger.STREAM, "telemetry", on_event)
    app.register(Trigger.STREAM, "items", on_event, service="cosmosdb", database="shop")
    app.register(
        Trigger.STORAGE, "uploads", on_event, actions=frozenset(a.value for a in StorageAction)
    )
    app.register(Trigger.SCHEDULE, "tick", on_event, rate="5 minutes")
    app.register(Trigger.CLOUDEVENT, "*", on_event)
    return recorder


def functions(native_app: func.FunctionApp) -> dict[str, Function]:
    """The generated functions by name (``get_functions`` may run only once per app)."""
    return {str(fn.get_function_name()): fn for fn in native_app.get_functions()}


def bindings(fn: Function) -> list[dict[str, Any]]:
    """The function's bindings as they appear in its function.json."""
    data = json.loads(fn.get_function_json())
    out: list[dict[str, Any]] = data["bindings"]
    return out


def trigger(fn: Function) -> dict[str, Any]:
    """The function's trigger binding as it appears in its function.json."""
    found = [b for b in bindings(fn) if b["type"].endswith("Trigger")]
    assert len(found) == 1, found
    return found[0]


def assert_worker_accepts(fn: Function) -> None:
    """Check the function the way the worker does when it loads it.

    Every binding needs a parameter (``context`` aside) whose annotation the binding's
    converter accepts, and the ``$return`` binding's converter must accept the return
    annotation.
    """
    user = fn.get_user_function()
    hints = typing.get_type_hints(user)
    params = set(inspect.signature(user).parameters) - {"context"}
    declared = {b.name for b in fn.get_bindings() if b.name != "$return"}
    assert params == declared
    assert hints["context"].__name__ == "Context"
    registry = _registry()
    for binding in fn.get_bindings():
        converter = registry.get(binding.type)
        assert converter is not None, binding.type
        if binding.name == "$return":
            assert converter.check_output_type_annotation(hints["return"])
        else:
            assert converter.check_input_type_annotation(hints[binding.name])


def _registry() -> Any:
    # get_binding_registry is untyped in azure-functions.
    registry: Any = meta.get_binding_registry
    return registry()


def call(fn: Function, native: object, invocation_id: str = "inv-1") -> Any:
    """Invoke the generated function as the worker does, with a context."""
    return fn.get_user_function()(native, InvocationContext(invocation_id))


# -- native inputs, decoded by the worker's own converters --------------------------------


def datum(spec: Any) -> meta.Datum:
    """A ``Datum`` from its JSON form (see ``polyserve_azure.testing.datum``)."""
    out: meta.Datum = testing.datum(spec)
    return out


def decode(binding: str, data: Any, metadata: dict[str, Any] | None = None) -> Any:
    """What the worker passes a function for a trigger of type ``binding``."""
    converter = _registry().get(binding)
    assert converter is not None, binding
    trigger_metadata = {k: datum(v) for k, v in (metadata or {}).items()}
    return converter.decode(datum(data), trigger_metadata=trigger_metadata)


def load(name: str) -> dict[str, Any]:
    """One of this adapter's samples in ``tests/events``."""
    data = json.loads((EVENTS / name).read_text())
    assert isinstance(data, dict)
    return data


def load_native(name: str) -> Any:
    """The object the worker builds from sample ``name``."""
    sample = load(name)
    return decode(sample["binding"], sample["data"], sample.get("metadata"))


def text(value: str) -> dict[str, Any]:
    return {"type": "string", "value": value}


def number(value: int) -> dict[str, Any]:
    return {"type": "int", "value": value}


def as_json(value: Any) -> dict[str, Any]:
    return {"type": "json", "value": value}


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Any:
    """An HTTP request as the worker builds it (``params`` from the URL, last value wins)."""
    from urllib.parse import parse_qsl, urlsplit

    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return decode(
        "httpTrigger",
        {
            "type": "http",
            "value": {
                "method": text(method),
                "url": text(url),
                "headers": {k: text(v) for k, v in (headers or {}).items()},
                "query": {k: text(v) for k, v in query.items()},
                "params": {},
                "body": {
                    "type": "bytes",
                    "value": base64.b64encode(body).decode(),
                    "encoding": "base64",
                },
            },
        },
    )


def queue_message(
    body: bytes,
    *,
    id: str = "9a1c-0001",
    dequeue_count: int = 1,
    insertion_time: str = "2024-05-01T12:00:00+00:00",
) -> Any:
    """A Storage Queue message as the worker builds it from the host's trigger metadata."""
    return decode(
        "queueTrigger",
        {"type": "bytes", "value": base64.b64encode(body).decode(), "encoding": "base64"},
        {
            "Id": text(id),
            "DequeueCount": number(dequeue_count),
            "InsertionTime": text(insertion_time),
            "ExpirationTime": text("2024-05-08T12:00:00+00:00"),
            "NextVisibleTime": text("2024-05-01T12:10:00+00:00"),
            "PopReceipt": text("AgAAAAMAAAAAAAAA"),
        },
    )


def service_bus_message(
    body: bytes,
    *,
    message_id: str = "sb-0001",
    delivery_count: int = 1,
    enqueued_time: str = "2024-05-01T12:00:00.1234567Z",
    properties: dict[str, Any] | None = None,
    session_id: str | None = None,
    subject: str | None = None,
) -> Any:
    """A Service Bus message as the worker builds it from the host's trigger metadata."""
    metadata: dict[str, Any] = {
        "MessageId": text(message_id),
        "DeliveryCount": number(delivery_count),
        "EnqueuedTimeUtc": text(enqueued_time),
        "ApplicationProperties": as_json(properties or {}),
        "UserProperties": as_json(properties or {}),
        "SequenceNumber": number(42),
    }
    if session_id is not None:
        metadata["SessionId"] = text(session_id)
    if subject is not None:
        metadata["Subject"] = text(subject)
    return decode(
        "serviceBusTrigger",
        {"type": "bytes", "value": base64.b64encode(body).decode(), "encoding": "base64"},
        metadata,
    )
