"""Hostile input through every provider's real entry point: each is answered, never crashed.

Every HTTP encoding and every message delivery of the adapters' codecs (``adapters/<provider>/tests/codecs.py``) is
fed what an attacker sends rather than what a client does, and each must end in an
answer the platform understands: a response (a 4xx problem for the client's
mistakes) or, for a message, a failure of that message alone with a typed error.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import re
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.properties.asgi_codec import AsgiCodec

from polyserve import (
    App,
    Body,
    Headers,
    HttpError,
    HttpRequest,
    HttpResponse,
    MalformedEventError,
    Message,
)
from polyserve_testkit.strategies import (
    INJECTED,
    any_text,
    encoded_paths,
    injected_headers,
    messages,
    nested_json,
)

if TYPE_CHECKING:
    from polyserve_testkit.codecs import HttpCodec, MessageCodec, NativeResponse, RawHttpCodec

PROVIDERS = ("aws", "azure", "gcp", "cloudflare")


def _codecs() -> tuple[list[RawHttpCodec], list[MessageCodec]]:
    http: list[RawHttpCodec] = []
    msg: list[MessageCodec] = []
    for name in PROVIDERS:
        module = importlib.import_module(f"adapters.{name}.tests.codecs")
        http.extend(module.HTTP_CODECS)
        msg.extend(module.MESSAGE_CODECS)
    return http, msg


HTTP_CODECS, MESSAGE_CODECS = _codecs()
_SLOW = settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
_CONTROLS = frozenset([chr(c) for c in range(32) if c != 9] + ["\x7f"])


def _problem(native: NativeResponse) -> dict[str, Any]:
    assert native.headers.get("content-type") == "application/problem+json", native
    body: dict[str, Any] = json.loads(native.body)
    assert body["status"] == native.status
    return body


# -- JSON nested past the stack ------------------------------------------------


def _deep_app() -> App:
    app = App("hostile")

    @app.post("/deep/plain")
    def plain(body: Annotated[Any, Body()]) -> Any:
        return body  # parsed by polyserve, and encoded again on the way out

    @app.post("/deep/model")
    def model(body: Annotated[list[Any] | dict[str, Any], Body()]) -> dict[str, bool]:
        return {"ok": True}  # parsed by pydantic

    return app


@pytest.mark.parametrize("codec", HTTP_CODECS, ids=lambda c: c.name)
@_SLOW
@given(body=nested_json(), route=st.sampled_from(["/deep/plain", "/deep/model"]))
def test_json_at_any_depth_is_answered_or_refused_as_invalid_json(
    codec: HttpCodec, body: bytes, route: str
) -> None:
    request = HttpRequest(
        "POST", route, headers=Headers({"content-type": "application/json"}), body=body,
        client="203.0.113.7", request_id="deep-1",
    )  # fmt: skip
    native = codec.call(_deep_app(), request)
    if native.status == 200:
        assert route == "/deep/model" or json.loads(native.body) == json.loads(body)
    else:
        assert native.status == 400, native
        assert _problem(native)["code"] == "invalid_json"


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
@_SLOW
@given(message=messages(), body=nested_json())
def test_a_message_at_any_depth_is_handled_or_fails_alone_with_invalid_json(
    codec: MessageCodec, message: Message, body: bytes
) -> None:
    app = App("hostile")
    errors: list[str] = []

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        try:
            msg.json()
        except MalformedEventError as exc:
            errors.append(exc.code)
            raise

    try:
        codec.call(app, dataclasses.replace(message, body=body))
    except Exception:
        assert errors == ["invalid_json"]
    else:
        assert errors == []


# -- response headers HTTP cannot carry --------------------------------------------

_BUILDERS: dict[str, Any] = {
    "json": lambda n, v: HttpResponse.json({"ok": 1}, headers={n: v}),
    "text": lambda n, v: HttpResponse.text("ok", headers={n: v}),
    "empty": lambda n, v: HttpResponse.empty(200, headers={n: v}),
    "constructor": lambda n, v: HttpResponse(200, Headers([(n, v)]), b"ok"),
    "with_header": lambda n, v: HttpResponse.json({"ok": 1}).with_header(n, v),
    "cookie_path": lambda n, v: HttpResponse.json({}).set_cookie("s", "1", path=f"/{n}/{v}"),
    "http_error": lambda n, v: _raise(HttpError(409, "conflict", "taken", headers={n: v})),
}


def _raise(exc: Exception) -> HttpResponse:
    raise exc


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("codec", HTTP_CODECS, ids=lambda c: c.name)
@_SLOW
@given(header=injected_headers(), builder=st.sampled_from(sorted(_BUILDERS)))
def test_a_response_header_http_cannot_carry_never_leaves_the_function(
    codec: HttpCodec, header: tuple[str, str], builder: str
) -> None:
    name, value = header
    app = App("hostile")

    @app.route("/inject", ["GET"])
    def inject() -> HttpResponse:
        response: HttpResponse = _BUILDERS[builder](name, value)
        return response

    logs = _Lines()
    logger = logging.getLogger("polyserve")
    logger.addHandler(logs)
    try:
        native = codec.call(app, HttpRequest("GET", "/inject", request_id="inject-1"))
    finally:
        logger.removeHandler(logs)
    assert native.status == 500, native
    assert _problem(native)["code"] == "internal_error"
    for header_name, header_value in native.headers.multi_items():
        assert not _CONTROLS.intersection(header_name + header_value), native
        assert "stolen" not in header_value
    errors = [json.loads(line) for line in logs.lines if '"InvalidHeaderError"' in line]
    assert errors, logs.lines
    assert all(INJECTED not in line for line in logs.lines)


# -- any text in the request line and headers ---------------------------------------

RAW_CODECS: list[RawHttpCodec] = [*HTTP_CODECS, AsgiCodec()]


def _known_app() -> tuple[App, list[str]]:
    app = App("hostile")
    seen: list[str] = []

    @app.get("/known")
    def known(request: HttpRequest) -> str:
        seen.append(request.method)
        return "known"

    return app, seen


@pytest.mark.parametrize("codec", RAW_CODECS, ids=lambda c: c.name)
@_SLOW
@given(
    method=st.sampled_from(["GET", "get", "POST", "OPTIONS", "HEAD"]) | any_text(),
    path=any_text(),
    query=st.none() | any_text(),
    headers=st.lists(st.tuples(any_text(min_size=1), any_text()), max_size=3),
)
def test_any_text_in_the_request_is_answered_never_crashed(
    codec: RawHttpCodec,
    method: str,
    path: str,
    query: str | None,
    headers: list[tuple[str, str]],
) -> None:
    app, seen = _known_app()
    target = "/" + path + ("" if query is None else "?" + query)
    native = codec.call_raw(app, method, target, headers)
    if native.status >= 400:
        assert native.status in (400, 404, 405, 413, 500), native.status
        if native.body or method.upper() != "HEAD":  # HEAD answers carry no body
            problem = _problem(native)
            assert native.status == 500 or problem["code"] != "internal_error"
    else:
        # Only the one route answers, or OPTIONS lists what it allows.
        assert seen or (native.status == 204 and "allow" in native.headers), native


# -- percent-escapes in the path ------------------------------------------------------


def _by_the_rule(raw: str) -> str | None:
    """What polyserve's rule makes of a raw path: the decoded path, or ``None`` (400).

    Written apart from ``decode_path``: an escape is ``%`` and two hex digits, an
    encoded slash is refused, the bytes must be UTF-8, and no segment may be ``.``,
    ``..`` or hold NUL (checked for every request, decoded or not).
    """
    if re.search("%(?![0-9A-Fa-f]{2})", raw) or re.search("%2[fF]", raw):
        return None
    try:
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in decoded or {".", ".."} & set(decoded.split("/")):
        return None
    return decoded


def _catch_all() -> tuple[App, list[str]]:
    app = App("paths")
    seen: list[str] = []

    @app.get("/p/{rest:path}")
    def rest(rest: str) -> str:
        seen.append(rest)
        return "ok"

    return app, seen


@pytest.mark.parametrize(
    "codec", [c for c in RAW_CODECS if not c.decodes_path], ids=lambda c: c.name
)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(raw=encoded_paths())
def test_every_raw_path_is_decoded_by_the_one_rule_or_refused(
    codec: RawHttpCodec, raw: str
) -> None:
    app, seen = _catch_all()
    native = codec.call_raw(app, "GET", raw, [])
    decoded = _by_the_rule(raw)
    if decoded is None:
        assert native.status == 400, (native, raw)
        assert _problem(native)["code"] == "invalid_path"
        assert seen == []
    else:
        assert native.status == 200, (native, raw, decoded)
        assert seen == [decoded.removeprefix("/p/")]
