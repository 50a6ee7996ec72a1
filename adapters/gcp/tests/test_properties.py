"""Properties: requests and messages survive each GCP format; junk never crashes a target."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import json
import string
from typing import TYPE_CHECKING, Any

import pytest
from adapters.gcp.tests.codecs import HTTP_CODECS, MESSAGE_CODECS, PushRejectedError
from adapters.gcp.tests.support import encode_document_event, structured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyserve_gcp
from polyserve import App, Context, HttpRequest, HttpResponse, Message
from polyserve.errors import PolyserveError
from polyserve_gcp import _firestore
from polyserve_gcp._protobuf import decode_document_event
from polyserve_testkit.codecs import NativeResponse
from polyserve_testkit.recorder import Recorder
from polyserve_testkit.strategies import http_requests, messages

if TYPE_CHECKING:
    from polyserve_testkit.codecs import HttpCodec, MessageCodec

SETTINGS = settings(max_examples=75, suppress_health_check=[HealthCheck.too_slow], deadline=None)


class EchoApp:
    """Records what its handlers receive; answers from the request."""

    def __init__(self, *, fail: bool = False) -> None:
        self.app = App("properties")
        self.requests: list[HttpRequest] = []
        self.messages: list[Message] = []

        @self.app.route("/echo/{rest:path}", ["GET", "POST", "PUT", "PATCH", "DELETE"])
        def echo(request: HttpRequest) -> HttpResponse:
            self.requests.append(request)
            if request.content_type == "application/octet-stream":
                response = HttpResponse.binary(request.body, 201)
            else:
                response = HttpResponse.json({"path": request.path, "n": len(request.body)})
            return (
                response.with_header("x-seen", request.method)
                .with_header("x-seen", str(len(request.query)))
                .set_cookie("a", "1")
                .set_cookie("b", "2")
            )

        @self.app.queue("orders")
        def on_order(message: Message) -> None:
            self.messages.append(message)
            if fail:
                raise RuntimeError("handler failed")


@pytest.mark.parametrize("codec", HTTP_CODECS, ids=lambda c: c.name)
@SETTINGS
@given(request=http_requests())
def test_each_format_delivers_the_same_request(codec: HttpCodec, request: HttpRequest) -> None:
    echo = EchoApp()

    native = codec.call(echo.app, request)

    assert len(echo.requests) == 1
    assert dataclasses.replace(echo.requests[0], path_params={}) == codec.expected(request)
    direct = echo.app.handle_http(codec.expected(request), Context("reference"))
    expected = codec.expected_response(NativeResponse(direct.status, direct.headers, direct.body))
    assert native == expected


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
@SETTINGS
@given(message=messages())
def test_each_format_delivers_the_same_message(codec: MessageCodec, message: Message) -> None:
    echo = EchoApp()
    codec.call(echo.app, message)
    assert echo.messages == [codec.expected(message)]


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
@settings(max_examples=10, deadline=None)
@given(message=messages())
def test_a_failing_handler_fails_the_delivery(codec: MessageCodec, message: Message) -> None:
    with pytest.raises((RuntimeError, PushRejectedError)) as info:
        codec.call(EchoApp(fail=True).app, message)
    if isinstance(info.value, PushRejectedError):
        assert info.value.status == 500


# -- Firestore values: JSON and protobuf agree ----------------------------------------

_text = st.text(string.printable + "éλ€", max_size=12)
_scalars = st.one_of(
    st.just({"nullValue": None}),
    st.booleans().map(lambda b: {"booleanValue": b}),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: {"integerValue": str(i)}),
    st.floats(allow_nan=False).map(lambda f: {"doubleValue": f}),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
        lambda d: {"timestampValue": d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    ),
    _text.map(lambda s: {"stringValue": s}),
    st.binary(max_size=12).map(lambda b: {"bytesValue": base64.b64encode(b).decode()}),
    _text.map(lambda s: {"referenceValue": "projects/p/databases/(default)/documents/c/" + s}),
    st.tuples(st.floats(-90, 90), st.floats(-180, 180)).map(
        lambda p: {"geoPointValue": {"latitude": p[0], "longitude": p[1]}}
    ),
)


def _containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    # Firestore forbids an array directly inside an array; a map may hold anything.
    return st.one_of(
        st.lists(children.filter(lambda v: "arrayValue" not in v), max_size=3).map(
            lambda values: {"arrayValue": {"values": values}}
        ),
        st.dictionaries(_text.filter(bool), children, max_size=3).map(
            lambda fields: {"mapValue": {"fields": fields}}
        ),
    )


firestore_values = st.recursive(_scalars, _containers, max_leaves=12)


@SETTINGS
@given(fields=st.dictionaries(_text.filter(bool), firestore_values, max_size=5))
def test_protobuf_and_json_give_the_same_plain_values(fields: dict[str, Any]) -> None:
    document = {"name": "projects/p/databases/(default)/documents/c/d", "fields": fields}
    via_protobuf = decode_document_event(encode_document_event({"value": document}))
    plain_json = {k: _firestore.plain(v) for k, v in fields.items()}
    plain_protobuf = {k: _firestore.plain(v) for k, v in via_protobuf["value"]["fields"].items()}
    assert plain_protobuf == plain_json


# -- junk ------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_types = st.sampled_from(
    [
        "google.cloud.pubsub.topic.v1.messagePublished",
        "google.cloud.storage.object.v1.finalized",
        "google.cloud.firestore.document.v1.written",
        "com.example.anything",
    ]
)


@SETTINGS
@given(
    event_type=_types,
    data=_json,
    extra=st.dictionaries(st.sampled_from(["subject", "document", "time"]), _json, max_size=2),
)
def test_junk_cloud_events_succeed_or_raise_polyserve_errors(
    event_type: str, data: Any, extra: dict[str, Any]
) -> None:
    attributes = {"specversion": "1.0", "type": event_type, "source": "//x/y", "id": "1"}
    attributes.update({k: v for k, v in extra.items() if isinstance(v, str)})
    target = polyserve_gcp.cloudevent(Recorder.catch_all().app)
    with contextlib.suppress(PolyserveError):
        target(structured({**attributes, "data": data}))


@SETTINGS
@given(body=st.binary(max_size=64) | _json.map(lambda v: json.dumps(v).encode()))
def test_junk_protobuf_is_decoded_or_malformed(body: bytes) -> None:
    with contextlib.suppress(PolyserveError):
        decode_document_event(body)
