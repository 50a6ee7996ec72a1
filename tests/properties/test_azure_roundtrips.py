"""Round trips through the Functions host's formats, and invariants of generated names and times."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string

import pytest
from adapters.azure.tests.codecs import HTTP_CODECS, MESSAGE_CODECS
from adapters.azure.tests.support import functions, trigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyserve_azure
from polyserve import App, Context, HttpRequest, HttpResponse, Message, Trigger
from polyserve_azure import _wire
from polyserve_testkit.codecs import HttpCodec, MessageCodec, NativeResponse
from polyserve_testkit.recorder import Recorder
from polyserve_testkit.strategies import http_requests, messages

_FUNCTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")


def _answer(request: HttpRequest) -> HttpResponse:
    headers = {"x-echo-method": request.method}
    if request.content_type == "application/octet-stream":
        response = HttpResponse.binary(request.body, 200, headers)
    else:
        response = HttpResponse.json({"path": request.path, "n": len(request.body)}, 201, headers)
    response = response.with_header("x-multi", "one").with_header("x-multi", "two")
    return response.set_cookie("a", "1").set_cookie("b", "2", max_age=60)


@pytest.mark.parametrize("codec", HTTP_CODECS, ids=lambda c: c.name)
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(request=http_requests())
def test_a_request_reaches_the_handler_and_its_answer_the_client(
    codec: HttpCodec, request: HttpRequest
) -> None:
    recorder = Recorder.echo(_answer)
    native = codec.call(recorder.app, request)
    assert len(recorder.requests) == 1
    seen = dataclasses.replace(recorder.requests[0], path_params={})
    assert seen == codec.expected(request)

    direct = recorder.app.handle_http(codec.expected(request), Context("reference"))
    expected = codec.expected_response(NativeResponse(direct.status, direct.headers, direct.body))
    assert native == expected
    assert native.headers.get_all("x-multi") == ["one, two"]
    assert len(native.headers.get_all("set-cookie")) == 2


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(message=messages())
def test_a_message_reaches_the_handler_as_sent(codec: MessageCodec, message: Message) -> None:
    recorder = Recorder.echo(_answer)
    codec.call(recorder.app, message)
    assert recorder.messages == [codec.expected(message)]


_entity_names = st.text(string.ascii_letters + string.digits + "-_.:/ é", min_size=1, max_size=160)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(_entity_names, min_size=1, max_size=6, unique=True))
def test_every_registration_gets_a_valid_unique_function_name(names: list[str]) -> None:
    app = App("names")
    for name in names:
        app.register(Trigger.QUEUE, name, lambda msg: None)
    generated = functions(polyserve_azure.function_app(app))
    assert len(generated) == len(names)
    assert all(_FUNCTION_NAME.match(name) for name in generated)
    assert len({name.lower() for name in generated}) == len(generated)
    assert sorted(trigger(fn)["queueName"] for fn in generated.values()) == sorted(names)


@given(
    moment=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=-5))]),
    ),
    ticks=st.integers(0, 9),
)
def test_host_timestamps_parse_to_the_same_instant(moment: dt.datetime, ticks: int) -> None:
    # .NET writes seven fraction digits; the seventh (100 ns) is below Python's precision.
    written = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + str(ticks) + moment.strftime("%z")
    written = written[:-2] + ":" + written[-2:]
    parsed = _wire.utc(written, "time")
    assert parsed == moment
    assert parsed is not None
    assert parsed.utcoffset() == dt.timedelta(0)
