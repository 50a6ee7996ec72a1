"""One app, four clouds: every provider's encoding of a request or message reaches the
handler as the same typed object, and the native responses carry the same answer."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from polyserve import Context, Headers, HttpRequest, HttpResponse, Message
from polyserve_testkit.codecs import HttpCodec, MessageCodec, NativeResponse
from polyserve_testkit.recorder import Recorder
from polyserve_testkit.strategies import http_requests, messages

PROVIDERS = ("aws", "azure", "gcp", "cloudflare")


def _codecs() -> tuple[list[HttpCodec], list[MessageCodec]]:
    http: list[HttpCodec] = []
    msg: list[MessageCodec] = []
    for name in PROVIDERS:
        module = importlib.import_module(f"adapters.{name}.tests.codecs")
        http.extend(module.HTTP_CODECS)
        msg.extend(module.MESSAGE_CODECS)
    return http, msg


HTTP_CODECS, MESSAGE_CODECS = _codecs()


def answer(request: HttpRequest) -> HttpResponse:
    """A response that depends on the request: status, repeated Set-Cookie, text or binary."""
    status = 200 + len(request.path) % 3
    headers = {"x-echo-method": request.method}
    if request.content_type == "application/octet-stream":
        response = HttpResponse.binary(request.body, status, headers)
    else:
        seen = {
            "path": request.path,
            "query": request.query.to_multi_dict(),
            "n": len(request.body),
        }
        response = HttpResponse.json(seen, status, headers)
    return response.set_cookie("a", "1").set_cookie("b", "2", max_age=60)


def _comparable(request: HttpRequest) -> HttpRequest:
    return dataclasses.replace(request, path_params={})


def _app_headers(response: NativeResponse, names: set[str]) -> dict[str, list[str]]:
    return {k: v for k, v in response.headers.to_multi_dict().items() if k in names}


@pytest.mark.parametrize("codec", HTTP_CODECS, ids=lambda c: c.name)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(request=http_requests())
def test_every_http_encoding_reaches_the_handler_as_the_same_request(
    codec: HttpCodec, request: HttpRequest
) -> None:
    recorder = Recorder.echo(answer)
    native = codec.call(recorder.app, request)
    assert len(recorder.requests) == 1, native
    assert _comparable(recorder.requests[0]) == _comparable(codec.expected(request))

    direct = recorder.app.handle_http(codec.expected(request), Context("reference"))
    reference = NativeResponse(direct.status, direct.headers, direct.body)
    expected = codec.expected_response(reference)
    names = set(expected.headers)
    assert native.status == expected.status
    assert native.body == expected.body
    assert _app_headers(native, names) == _app_headers(expected, names)


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(message=messages())
def test_every_message_encoding_reaches_the_handler_as_the_same_message(
    codec: MessageCodec, message: Message
) -> None:
    recorder = Recorder.echo(answer)
    codec.call(recorder.app, message)
    assert recorder.messages == [codec.expected(message)]


def test_every_provider_contributes_codecs() -> None:
    by_provider: dict[str, int] = {}
    for name in PROVIDERS:
        module: Any = importlib.import_module(f"adapters.{name}.tests.codecs")
        by_provider[name] = len(module.HTTP_CODECS) + len(module.MESSAGE_CODECS)
    assert all(count >= 2 for count in by_provider.values()), by_provider


def test_headers_of_the_reference_answer_are_multi_valued() -> None:
    response = answer(HttpRequest("GET", "/echo/x", headers=Headers()))
    assert len(response.headers.get_all("set-cookie")) == 2
