"""Cloudflare Python Workers: a Fetch ``Request`` and Queues messages, on the adapter's fakes.

The fakes behave as the JavaScript objects do where it shows: ``Headers`` joins
the values of a repeated name with ``", "`` (except ``Set-Cookie``), and a
response is read back through ``Headers.entries()``, as a client would see it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from polyserve import Headers, HttpRequest, Message
from polyserve_cloudflare import entrypoint, handlers
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeBuffer,
    FakeDate,
    FakeExecutionContext,
    FakeJsValue,
    FakeMessage,
    FakeRequest,
    FakeResponse,
    FakeRuntime,
)
from polyserve_testkit.codecs import MessageCodec, NativeResponse, RawHttpCodec

if TYPE_CHECKING:
    from polyserve import App

__all__ = ["HTTP_CODECS", "MESSAGE_CODECS"]

_ORIGIN = "https://worker.example.com"


def _joined(headers: Headers) -> Headers:
    """Headers as a JavaScript ``Headers`` holds them: one value per name but Set-Cookie."""
    pairs: list[tuple[str, str]] = []
    for name, values in headers.to_multi_dict().items():
        if name == "set-cookie":
            pairs.extend((name, v) for v in values)
        else:
            pairs.append((name, ", ".join(values)))
    return Headers(pairs)


def _url(request: HttpRequest) -> str:
    query = request.query.to_string()
    return _ORIGIN + quote(request.path, safe="/") + (f"?{query}" if query else "")


def _native_request(request: HttpRequest) -> FakeRequest:
    headers = [*request.headers.multi_items()]
    if request.client:
        headers.append(("CF-Connecting-IP", request.client))
    if request.request_id:
        headers.append(("CF-Ray", request.request_id))
    return FakeRequest(request.method, _url(request), headers, request.body)


def _decoded(response: Any) -> NativeResponse:
    assert isinstance(response, FakeResponse), response
    return NativeResponse(response.status, Headers(response.headers.entries()), response.content)


@dataclasses.dataclass
class _WorkersHttp:
    """A request through the ``Default`` class or the module-level ``on_fetch``."""

    name: str
    is_class: bool

    def expected(self, request: HttpRequest) -> HttpRequest:
        # Cloudflare adds the client address and the ray id as headers.
        extra = []
        if request.client:
            extra.append(("cf-connecting-ip", request.client))
        if request.request_id:
            extra.append(("cf-ray", request.request_id))
        headers = _joined(Headers([*request.headers.multi_items(), *extra]))
        return dataclasses.replace(request, headers=headers)

    decodes_path = False  # request.url keeps the client's escapes

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        # A JavaScript Headers refuses an empty name and CR, LF or NUL anywhere.
        kept = [(n, v) for n, v in headers if n and not {"\r", "\n", "\0"} & set(n + v)]
        return self._run(app, FakeRequest(method, _ORIGIN + target, kept))

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        return self._run(app, _native_request(request))

    def _run(self, app: App, native: FakeRequest) -> NativeResponse:
        if self.is_class:
            worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
            response = asyncio.run(worker.fetch(native))
        else:
            on_fetch = handlers(app, runtime=FakeRuntime()).on_fetch
            response = asyncio.run(on_fetch(native, {}, FakeExecutionContext()))
        return _decoded(response)

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        return dataclasses.replace(response, headers=_joined(response.headers))


def _as_text(body: bytes) -> Any:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return FakeBuffer(body)


def _json_form(body: bytes) -> tuple[Any, bytes] | None:
    """The value a producer sending ``body`` as JSON delivers, and the bytes it becomes.

    A JSON string arrives as a string, a number, boolean or null as that Python
    value, anything else as a JavaScript object; ``None`` when ``body`` is not JSON
    that UTF-8 and JSON.stringify can carry (NaN, a lone surrogate).
    """
    try:
        value = json.loads(body)
        if isinstance(value, str):
            return value, value.encode("utf-8")
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encoded = text.encode("utf-8")
    except (ValueError, RecursionError):  # also UnicodeDecodeError and UnicodeEncodeError
        return None
    if value is None or isinstance(value, (bool, int, float)):
        return value, encoded
    return FakeJsValue(value), encoded


def _as_json(body: bytes) -> Any:
    form = _json_form(body)
    return FakeBuffer(body) if form is None else form[0]


def _compact_json(body: bytes) -> bytes:
    form = _json_form(body)
    return body if form is None else form[1]


@dataclasses.dataclass
class _WorkersQueue:
    """A message with its body sent as bytes, as a string, or as a JSON value."""

    name: str
    content_type: str

    def expected(self, message: Message) -> Message:
        # Workers messages carry no attributes, ordering key or subject; a JSON body
        # comes back as JSON.stringify writes it.
        body = _compact_json(message.body) if self.content_type == "json" else message.body
        return dataclasses.replace(message, body=body, attributes={}, group_key=None, subject=None)

    def call(self, app: App, message: Message) -> None:
        encode = {"bytes": FakeBuffer, "text": _as_text, "json": _as_json}[self.content_type]
        timestamp = FakeDate.from_datetime(message.enqueued_at) if message.enqueued_at else None
        native = FakeMessage(message.id, encode(message.body), timestamp, message.attempt)
        worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
        asyncio.run(worker.queue(FakeBatch(message.source, [native])))
        if native.settled != "acked":
            raise RuntimeError(f"message {message.id} was {native.settled}, not acknowledged")


HTTP_CODECS: list[RawHttpCodec] = [
    _WorkersHttp("cloudflare-entrypoint", is_class=True),
    _WorkersHttp("cloudflare-on-fetch", is_class=False),
]
MESSAGE_CODECS: list[MessageCodec] = [
    _WorkersQueue("cloudflare-queue-bytes", "bytes"),
    _WorkersQueue("cloudflare-queue-text", "text"),
    _WorkersQueue("cloudflare-queue-json", "json"),
]
