"""Google Cloud Functions through functions-framework: the HTTP target and Pub/Sub deliveries.

The HTTP codec builds the WSGI environ Werkzeug builds for functions-framework,
runs ``polyserve_gcp.http`` on the resulting ``flask.Request`` and reads the
``flask.Response`` back. The message codecs deliver a Pub/Sub message the three
ways a function receives one: an Eventarc CloudEvent (encoded to HTTP in binary
mode with the ``cloudevents`` SDK and parsed back, as functions-framework does),
a push subscription's envelope POSTed to the HTTP target, and a 1st gen
background event. What a format cannot carry is in ``expected`` and
``expected_response``, and in the "Known limits" of ``docs/providers/gcp.md``:

* The WSGI server joins the values of a repeated request header into one value
  (Werkzeug with ``", "``, gunicorn, which functions-framework runs, with ``","``).
* Werkzeug adds ``Host`` to every request and ``Content-Length`` to every request
  with a body and to every response.
* A background event carries no delivery attempt: the handler sees attempt 1.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_to_bytes

import polyserve_gcp
from polyserve import Headers, HttpRequest, Message
from polyserve_gcp.testing import build
from polyserve_testkit.codecs import MessageCodec, NativeResponse, RawHttpCodec

if TYPE_CHECKING:
    import datetime as dt

    from polyserve import App

__all__ = ["HTTP_CODECS", "MESSAGE_CODECS", "PushRejectedError"]


class PushRejectedError(Exception):
    """The HTTP target answered a push with a non-2xx status: Pub/Sub would redeliver it."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"push answered {status}: {body!r}")
        self.status = status


def _joined(headers: Headers, sep: str) -> list[tuple[str, str]]:
    return [(name, sep.join(values)) for name, values in headers.to_multi_dict().items()]


@dataclasses.dataclass
class _FunctionsFrameworkHttp:
    """An HTTP function: Werkzeug's WSGI request -> ``polyserve_gcp.http`` -> Flask response."""

    name: str = "gcp_functions_framework_http"

    def expected(self, request: HttpRequest) -> HttpRequest:
        pairs = _joined(request.headers, ", ")
        pairs.append(("host", "localhost"))
        pairs.append(("function-execution-id", request.request_id))
        if request.body:
            pairs.append(("content-length", str(len(request.body))))
        return dataclasses.replace(request, headers=Headers(pairs))

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        headers = response.headers
        if "content-length" not in headers:
            headers = headers.with_added("content-length", str(len(response.body)))
        return NativeResponse(response.status, headers, response.body)

    decodes_path = False  # gunicorn's RAW_URI is the request line as sent

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        import flask

        path, _, query = target.partition("?")
        # A WSGI environ holds the bytes of the request, one character each.
        overrides = {
            "REQUEST_METHOD": _wsgi(method),
            "PATH_INFO": unquote_to_bytes(_wsgi(path).encode("latin-1")).decode("latin-1"),
            "RAW_URI": _wsgi(target),
            "REQUEST_URI": _wsgi(target),
            "QUERY_STRING": _wsgi(query),
        }
        for name, value in headers:
            key = "HTTP_" + _wsgi(name).upper().replace("-", "_")
            overrides[key] = (
                f"{overrides[key]},{_wsgi(value)}" if key in overrides else _wsgi(value)
            )
        with flask.Flask(__name__).test_request_context(
            "/", environ_overrides=overrides
        ) as context:
            native = polyserve_gcp.http(app)(context.request)
        return NativeResponse(
            native.status_code, Headers(list(native.headers.items())), native.get_data()
        )

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        import flask

        path = "/".join(quote(segment, safe="") for segment in request.path.split("/"))
        headers = [*request.headers.multi_items(), ("Function-Execution-Id", request.request_id)]
        with flask.Flask(__name__).test_request_context(
            path,
            method=request.method,
            query_string=request.query.to_string(),
            headers=headers,
            data=request.body,
            environ_base={"REMOTE_ADDR": request.client or ""},
        ) as context:
            native = polyserve_gcp.http(app)(context.request)
        return NativeResponse(
            native.status_code, Headers(list(native.headers.items())), native.get_data()
        )


def _wsgi(text: str) -> str:
    """``text`` as a WSGI server passes it: its UTF-8 bytes, one character each."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def _time(when: dt.datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if when else None


@dataclasses.dataclass
class _EventarcPubSub:
    """A ``messagePublished`` CloudEvent in binary mode, through the CloudEvent target."""

    name: str = "gcp_eventarc_pubsub"

    def expected(self, message: Message) -> Message:
        return message

    def call(self, app: App, message: Message) -> None:
        from cloudevents.conversion import to_binary
        from cloudevents.http import CloudEvent, from_http

        built = build(
            "pubsub", data=message.body, topic=message.source, message_id=message.id,
            attributes=dict(message.attributes), attempt=message.attempt,
            publish_time=_time(message.enqueued_at), ordering_key=message.group_key,
            subscription=message.source,
        )  # fmt: skip
        data = built.pop("data")
        headers, body = to_binary(CloudEvent(built, data))
        polyserve_gcp.cloudevent(app)(from_http(headers, body))


@dataclasses.dataclass
class _PubSubPush:
    """A push subscription's envelope, POSTed to the HTTP target's push path."""

    name: str = "gcp_pubsub_push"

    def expected(self, message: Message) -> Message:
        return message

    def call(self, app: App, message: Message) -> None:
        import flask

        envelope = build(
            "pubsub_push", data=message.body, subscription=message.source,
            message_id=message.id, attributes=dict(message.attributes), attempt=message.attempt,
            publish_time=_time(message.enqueued_at), ordering_key=message.group_key,
        )  # fmt: skip
        with flask.Flask(__name__).test_request_context(
            "/_pubsub", method="POST", data=json.dumps(envelope), content_type="application/json"
        ) as context:
            native = polyserve_gcp.http(app)(context.request)
        if native.status_code not in (102, 200, 201, 202, 204):
            raise PushRejectedError(native.status_code, native.get_data())


@dataclasses.dataclass
class _BackgroundPubSub:
    """A 1st gen ``google.pubsub.topic.publish`` background event."""

    name: str = "gcp_background_pubsub"

    def expected(self, message: Message) -> Message:
        return dataclasses.replace(message, attempt=1)

    def call(self, app: App, message: Message) -> None:
        # functions-framework's context class ships without type information.
        from google.cloud.functions.context import Context  # type: ignore[import-untyped]

        event = build(
            "legacy_pubsub", data=message.body, topic=message.source, event_id=message.id,
            attributes=dict(message.attributes), timestamp=_time(message.enqueued_at),
        )  # fmt: skip
        polyserve_gcp.background(app)(event["data"], Context(**event["context"]))


HTTP_CODECS: list[RawHttpCodec] = [_FunctionsFrameworkHttp()]
MESSAGE_CODECS: list[MessageCodec] = [_EventarcPubSub(), _PubSubPush(), _BackgroundPubSub()]
