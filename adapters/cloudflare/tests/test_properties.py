"""Properties of the Workers encodings that only this adapter has: queue settlement
and message bodies. The cross-provider round trips of requests and messages through
the Workers encodings run in the root ``tests/properties/test_portability.py``."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyserve import HttpRequest, HttpResponse
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
from polyserve_testkit.recorder import Recorder


def _answer(request: HttpRequest) -> HttpResponse:
    response = HttpResponse.binary(request.body, 200 + len(request.path) % 4)
    return response.set_cookie("a", "1").set_cookie("b", "2").with_header("x-n", "1")


SETTINGS = settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@SETTINGS
@given(bodies=st.lists(st.binary(max_size=16), max_size=8))
def test_exactly_the_failing_messages_are_retried(bodies: list[bytes]) -> None:
    recorder = Recorder.echo(_answer, fails=lambda message: message.body.startswith(b"!"))
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
