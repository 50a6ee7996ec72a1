"""Round trips through the Workers encodings, with the shared Hypothesis strategies."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.properties.providers.cloudflare import HTTP_CODECS, MESSAGE_CODECS
from tests.properties.strategies import http_requests, messages

from polyserve import App, Context, HttpRequest, HttpResponse, Message
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare._queue import body_bytes
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeBuffer,
    FakeExecutionContext,
    FakeJsValue,
    FakeMessage,
    FakeRuntime,
)

if TYPE_CHECKING:
    from tests.properties.providers import HttpCodec, MessageCodec

SETTINGS = settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow], deadline=None)


class Recorder:
    def __init__(self) -> None:
        self.app = App("roundtrip")
        self.requests: list[HttpRequest] = []
        self.messages: list[Message] = []

        @self.app.route("/echo/{rest:path}", ["GET", "POST", "PUT", "PATCH", "DELETE"])
        def echo(request: HttpRequest) -> HttpResponse:
            self.requests.append(request)
            response = HttpResponse.binary(request.body, 200 + len(request.path) % 4)
            return response.set_cookie("a", "1").set_cookie("b", "2").with_header("x-n", "1")

        @self.app.queue("orders")
        def on_order(message: Message) -> None:
            self.messages.append(message)
            if message.body.startswith(b"!"):
                raise RuntimeError("rejected")


@pytest.mark.parametrize("codec", HTTP_CODECS, ids=lambda c: c.name)
@SETTINGS
@given(request=http_requests())
def test_requests_round_trip(codec: HttpCodec, request: HttpRequest) -> None:
    recorder = Recorder()
    native = codec.call(recorder.app, request)
    (seen,) = recorder.requests
    assert dataclasses.replace(seen, path_params={}) == codec.expected(request)

    direct = recorder.app.handle_http(codec.expected(request), Context("reference"))
    assert native.status == direct.status
    assert native.body == direct.body
    assert native.headers.get_all("set-cookie") == direct.headers.get_all("set-cookie")
    assert native.headers["content-type"] == direct.headers["content-type"]


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
@SETTINGS
@given(message=messages())
def test_messages_round_trip(codec: MessageCodec, message: Message) -> None:
    recorder = Recorder()
    if message.body.startswith(b"!"):
        with pytest.raises(RuntimeError, match="retried"):
            codec.call(recorder.app, message)
    else:
        codec.call(recorder.app, message)
    assert recorder.messages == [codec.expected(message)]


@SETTINGS
@given(bodies=st.lists(st.binary(max_size=16), max_size=8))
def test_exactly_the_failing_messages_are_retried(bodies: list[bytes]) -> None:
    recorder = Recorder()
    worker = entrypoint(recorder.app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    natives = [FakeMessage(f"m{i}", FakeBuffer(body)) for i, body in enumerate(bodies)]
    asyncio.run(worker.queue(FakeBatch("orders", natives)))
    for native, body in zip(natives, bodies, strict=True):
        assert native.settled == ("retried" if body.startswith(b"!") else "acked")


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _no_lone_surrogates(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(value=_json.filter(_no_lone_surrogates))
def test_json_bodies_decode_to_the_same_value(value: Any) -> None:
    native = value if not isinstance(value, (list, dict)) else FakeJsValue(value)
    body = body_bytes(native, FakeRuntime())
    if isinstance(value, str):
        assert body.decode("utf-8") == value
    else:
        decoded = json.loads(body)
        assert decoded == value or (isinstance(value, float) and math.isclose(decoded, value))


@given(data=st.binary())
def test_buffer_bodies_are_the_same_bytes(data: bytes) -> None:
    assert body_bytes(FakeBuffer(data), FakeRuntime()) == data
