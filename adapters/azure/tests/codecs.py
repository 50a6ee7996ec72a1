"""Azure Functions: the HTTP trigger (with and without host.json's ``api`` route prefix),
Storage Queue and Service Bus queue triggers.

Each codec builds what the Functions host sends the Python worker, decodes it with the
worker's own converter into the real ``azure.functions`` object, calls the function that
``polyserve_azure.function_app`` generated, and encodes the answer with the worker's
converter, as the host receives it. What the host cannot carry is in ``expected`` and
``expected_response``, and in the "Limits" of ``docs/providers/azure.md``:

* The host joins the values of a repeated request header with ", " (one header, one value).
* The front end adds ``X-Forwarded-For`` with the client address.
* The worker keeps one value per response header name: polyserve joins repeated values
  with ", ", except ``Set-Cookie``, which the worker re-parses into separate cookies
  (``SimpleCookie`` re-serialises their attributes). A response without a content type
  gets ``text/plain; charset=utf-8`` from the worker.
* Storage Queue messages carry no attributes.
"""

from __future__ import annotations

import dataclasses
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import polyserve_azure
from polyserve import App, Headers, HttpRequest, Message, Trigger
from polyserve_azure.testing import FunctionHost, InvocationContext, build
from polyserve_testkit.codecs import MessageCodec, NativeResponse, RawHttpCodec

if TYPE_CHECKING:
    import azure.functions as func

__all__ = ["HTTP_CODECS", "MESSAGE_CODECS"]

_HOST = "https://polyserve-portability.azurewebsites.net"
_DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"


def _datum(value: Any, kind: str) -> Any:
    from azure.functions import meta

    return meta.Datum(value, kind)


def _decode(binding: str, data: Any, metadata: dict[str, Any]) -> Any:
    from azure.functions import meta

    # get_binding_registry is untyped in azure-functions.
    registry: Any = meta.get_binding_registry
    converter = registry().get(binding)
    return converter.decode(data, trigger_metadata=metadata)


def _function(native_app: func.FunctionApp, binding: str, **fields: str) -> Any:
    """The user function of the one generated function whose trigger matches."""
    found = []
    for fn in native_app.get_functions():
        trigger = fn.get_trigger()
        repr_ = trigger.get_dict_repr() if trigger is not None else {}
        if repr_.get("type") == binding and all(repr_.get(k) == v for k, v in fields.items()):
            found.append(fn.get_user_function())
    assert len(found) == 1, (binding, fields, found)
    return found[0]


def _joined(headers: Headers, *, keep: str = "") -> Headers:
    pairs: list[tuple[str, str]] = []
    for name, values in headers.to_multi_dict().items():
        if name == keep:
            pairs.extend((name, v) for v in values)
        else:
            pairs.append((name, ", ".join(values)))
    return Headers(pairs)


def _cookie_strings(cookie: SimpleCookie) -> list[str]:
    return [morsel.OutputString() for morsel in cookie.values()]


@dataclasses.dataclass
class _Http:
    """The catch-all HTTP trigger; ``route_prefix`` is host.json's ``routePrefix``."""

    name: str
    route_prefix: str

    def expected(self, request: HttpRequest) -> HttpRequest:
        headers = _joined(request.headers)
        if request.client:
            headers = headers.with_added("x-forwarded-for", request.client)
        return dataclasses.replace(request, headers=headers)

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        headers = _joined(response.headers, keep="set-cookie")
        pairs = [(k, v) for k, v in headers.multi_items() if k != "set-cookie"]
        for value in response.headers.get_all("set-cookie"):
            pairs.extend(("set-cookie", c) for c in _cookie_strings(SimpleCookie(value)))
        if "content-type" not in headers:
            pairs.append(("content-type", _DEFAULT_CONTENT_TYPE))
        return dataclasses.replace(response, headers=Headers(pairs))

    decodes_path = False  # the host's URL keeps what ASP.NET Core re-encodes, %2F too

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        joined: dict[str, str] = {}
        for name, value in headers:  # the host joins repeated headers
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        fields = {
            "method": _datum(method, "string"),
            "url": _datum(_HOST + prefix + target, "string"),
            "headers": {k: _datum(v, "string") for k, v in joined.items()},
            "query": {},
            "params": {"path": _datum(target.lstrip("/"), "string")},
            "body": _datum(b"", "bytes"),
        }
        return self._run(app, fields, "raw-1")

    def _run(self, app: App, value: dict[str, Any], invocation_id: str) -> NativeResponse:
        from azure.functions.http import HttpResponseConverter

        native_app = polyserve_azure.function_app(app, route_prefix=self.route_prefix)
        function = _function(native_app, "httpTrigger")
        req = _decode("httpTrigger", _datum(value, "http"), {})
        native = function(req, InvocationContext(invocation_id))
        out = HttpResponseConverter.encode(native, expected_type=None).value
        pairs = [(k, d.value) for k, d in out["headers"].items()]
        for cookie in out["cookies"] or []:
            pairs.extend(("set-cookie", c) for c in _cookie_strings(cookie))
        return NativeResponse(int(out["status_code"].value), Headers(pairs), out["body"].value)

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        headers = self.expected(request).headers
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        url = _HOST + prefix + quote(request.path, safe="/")
        if request.query:
            url += "?" + request.query.to_string()
        value = {
            "method": _datum(request.method, "string"),
            "url": _datum(url, "string"),
            "headers": {k: _datum(v, "string") for k, v in headers.multi_items()},
            # The worker's params keep the last value of a repeated key.
            "query": {k: _datum(v, "string") for k, v in request.query.multi_items()},
            "params": {"path": _datum(request.path.lstrip("/"), "string")},
            "body": _datum(request.body, "bytes"),
        }
        return self._run(app, value, request.request_id)


@dataclasses.dataclass
class _StorageQueue:
    """A Storage Queue trigger (one message per invocation)."""

    name: str = "azure_storage_queue"

    def expected(self, message: Message) -> Message:
        return dataclasses.replace(message, attributes={}, group_key=None, subject=None)

    def call(self, app: App, message: Message) -> None:
        assert message.enqueued_at is not None
        event = build(
            "queue", body=message.body, queue=message.source, message_id=message.id,
            attempt=message.attempt, insertion_time=message.enqueued_at.isoformat(),
        )  # fmt: skip
        host = FunctionHost(polyserve_azure.function_app(app))
        host.call(event, invocation_id="queue-" + message.id)


@dataclasses.dataclass
class _ServiceBusQueue:
    """A Service Bus queue trigger: the app's queue registrations, with ``service="servicebus"``."""

    name: str = "azure_service_bus_queue"

    def expected(self, message: Message) -> Message:
        return message

    def call(self, app: App, message: Message) -> None:
        assert message.enqueued_at is not None
        # The same handlers, registered as Service Bus queues as a deployment would.
        bus = App(app.name)
        for reg in app.registrations:
            options = dict(reg.options)
            if reg.trigger is Trigger.QUEUE:
                options["service"] = "servicebus"
            bus.register(reg.trigger, reg.name, reg.endpoint, **options)
        for mw in app.middleware_stack():  # and its middleware (``polyserve.otel``'s, say)
            bus.middleware(mw)
        event = build(
            "servicebus", body=message.body, queue=message.source, message_id=message.id,
            attempt=message.attempt, properties=dict(message.attributes),
            enqueued_time=message.enqueued_at.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        )  # fmt: skip
        host = FunctionHost(polyserve_azure.function_app(bus))
        host.call(event, invocation_id="sb-" + message.id)


HTTP_CODECS: list[RawHttpCodec] = [
    _Http("azure_http", route_prefix="api"),
    _Http("azure_http_root", route_prefix=""),
]

MESSAGE_CODECS: list[MessageCodec] = [
    _StorageQueue(),
    _ServiceBusQueue(),
]
