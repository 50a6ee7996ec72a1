from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest

from polyserve import (
    Headers,
    HttpRequest,
    HttpResponse,
    InvalidHeaderError,
    MalformedEventError,
    QueryParams,
)


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    headers = Headers([("X-Tag", "a"), ("x-tag", "b"), ("Accept", "*/*")])
    assert headers["X-TAG"] == "a"
    assert headers.get_all("x-Tag") == ["a", "b"]
    assert "ACCEPT" in headers
    assert list(headers) == ["x-tag", "accept"]
    assert len(headers) == 2
    assert headers.to_multi_dict() == {"x-tag": ["a", "b"], "accept": ["*/*"]}


def test_header_equality_ignores_name_order_but_keeps_value_order() -> None:
    assert Headers([("a", "1"), ("b", "2")]) == Headers([("B", "2"), ("A", "1")])
    assert Headers([("a", "1"), ("a", "2")]) != Headers([("a", "2"), ("a", "1")])
    assert Headers([("a", "1")]) != QueryParams([("a", "1")])


def test_header_copies_add_and_set() -> None:
    base = Headers([("a", "1")])
    assert base.with_added("A", "2").get_all("a") == ["1", "2"]
    assert base.with_added("a", "2").with_set("A", "3").get_all("a") == ["3"]
    assert base.get_all("a") == ["1"]


def test_query_params_parse_repeats_blanks_and_bad_escapes() -> None:
    query = QueryParams.from_string("a=1&a=2&empty=&flag&sp=a+b&enc=%C3%A9&bad=%ZZ%")
    assert query.get_all("a") == ["1", "2"]
    assert query["empty"] == ""
    assert query["flag"] == ""
    assert query["sp"] == "a b"
    assert query["enc"] == "é"
    assert query["bad"] == "%ZZ%"
    assert "A" not in query


def test_query_params_round_trip_through_a_string() -> None:
    query = QueryParams([("k", "v w"), ("k", "&="), ("é", "/")])
    assert QueryParams.from_string(query.to_string()) == query


def test_cookies_come_from_every_cookie_header_and_skip_junk() -> None:
    request = HttpRequest(
        "GET",
        "/",
        headers=Headers([("cookie", 'a=1; b="two"; junk; =x'), ("cookie", "c=3; a=9")]),
    )
    assert request.cookies == {"a": "1", "b": "two", "c": "3"}


def test_json_body_and_invalid_json() -> None:
    assert HttpRequest("POST", "/", body=b'{"a": [1]}').json() == {"a": [1]}
    with pytest.raises(MalformedEventError) as info:
        HttpRequest("POST", "/", body=b"{nope").json()
    assert info.value.code == "invalid_json"
    assert HttpRequest("POST", "/", body=b"\xff").text == "\ufffd"


def test_raw_takes_no_part_in_equality() -> None:
    assert HttpRequest("GET", "/", raw={"a": 1}) == HttpRequest("GET", "/", raw={"b": 2})


def test_events_are_frozen() -> None:
    request = HttpRequest("GET", "/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.method = "POST"  # type: ignore[misc]  # the point of the test


@dataclasses.dataclass
class _Point:
    x: int
    when: dt.date


def test_json_response_encodes_dataclasses_dates_and_uuids() -> None:
    ident = uuid.UUID(int=5)
    response = HttpResponse.json({"p": _Point(1, dt.date(2024, 5, 6)), "id": ident}, 201)
    assert response.status == 201
    assert response.media_type == "application/json"
    assert response.body == (
        b'{"p":{"x":1,"when":"2024-05-06"},"id":"00000000-0000-0000-0000-000000000005"}'
    )


def test_set_cookie_adds_one_header_per_cookie() -> None:
    response = HttpResponse.text("hi").set_cookie("a", "1").set_cookie("b", "2", max_age=60)
    cookies = response.headers.get_all("set-cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith("a=1")
    assert "HttpOnly" in cookies[0]
    assert "Max-Age=60" in cookies[1]


@pytest.mark.parametrize(
    ("response", "is_text"),
    [
        (HttpResponse.text("héllo"), True),
        (HttpResponse.json({"a": 1}), True),
        (HttpResponse.binary(b"\x89PNG", media_type="image/png"), False),
        (HttpResponse.binary(b"\xff\xfe", media_type="text/plain"), False),
        (HttpResponse.empty(), True),
        (HttpResponse.binary(b"x", media_type="application/vnd.api+json"), True),
    ],
)
def test_is_text_decides_base64(response: HttpResponse, is_text: bool) -> None:
    assert response.is_text is is_text


def test_explicit_content_type_is_kept() -> None:
    response = HttpResponse.json([1], headers={"Content-Type": "application/vnd.x+json"})
    assert response.headers.get_all("content-type") == ["application/vnd.x+json"]


@pytest.mark.parametrize(
    ("response", "text"),
    [
        (HttpResponse.text("héllo"), "héllo"),
        (HttpResponse.json({"a": 1}), '{"a":1}'),
        (HttpResponse.binary(b"\x89PNG", media_type="image/png"), None),
        (HttpResponse.binary(b"\xff\xfe", media_type="text/plain"), None),
        (HttpResponse.empty(), ""),
    ],
)
def test_as_text_agrees_with_is_text(response: HttpResponse, text: str | None) -> None:
    assert response.as_text() == text
    assert response.is_text is (text is not None)


def test_header_view_reads_the_provider_map_on_first_use() -> None:
    source = {"Content-Type": "application/json", "X-Tag": "a"}
    headers = Headers.view(source)
    assert headers == Headers([("content-type", "application/json"), ("x-tag", "a")])
    assert headers["CONTENT-TYPE"] == "application/json"
    multi = Headers.view({"X-Tag": ["a", "b"], "Empty": [None]}, multi=True)
    assert multi.get_all("x-tag") == ["a", "b"]
    assert multi["empty"] == ""
    query = QueryParams.view({"Q": ["1", "2"]}, multi=True)
    assert query.get_all("Q") == ["1", "2"]
    assert "q" not in query


@pytest.mark.parametrize(
    ("source", "multi"),
    [({"x": 1}, False), ({"x": "not a list"}, True), ({"x": ["a", 2]}, True), ({1: "a"}, False)],
)
def test_header_view_of_a_malformed_map_fails_as_malformed_event(
    source: dict[object, object], multi: bool
) -> None:
    headers = Headers.view(source, multi=multi)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(MalformedEventError):
        headers.get("x")


def test_header_view_is_a_snapshot_from_its_first_use() -> None:
    source = {"a": "1"}
    headers = Headers.view(source)
    assert headers["a"] == "1"
    source["a"] = "2"
    assert headers["a"] == "1"


def test_events_keep_dataclass_behaviour() -> None:
    request = HttpRequest("GET", "/pets", headers=Headers([("a", "1")]), raw={"r": 1})
    assert [f.name for f in dataclasses.fields(request)][:3] == ["method", "path", "query"]
    moved = dataclasses.replace(request, path="/cats")
    assert moved.path == "/cats"
    assert moved.headers == request.headers
    assert moved.raw is request.raw
    assert HttpRequest("GET", "/pets").path_params == {}
    assert HttpRequest("GET", "/pets").path_params is not HttpRequest("GET", "/pets").path_params
    assert "method='GET'" in repr(request)
    assert "raw" not in repr(request)
    assert request == dataclasses.replace(request, raw={"other": 2})  # raw is not compared
    assert request != dataclasses.replace(request, body=b"x")
    assert repr(HttpResponse(201)) == "HttpResponse(status=201, headers=Headers([]), body=b'')"
    assert hash(HttpResponse(200, Headers([("a", "1")]), b"x")) == hash(
        HttpResponse(200, Headers([("a", "1")]), b"x")
    )
    import copy
    import pickle

    response = HttpResponse.json({"a": 1}, 201)
    assert pickle.loads(pickle.dumps(response)) == response
    assert copy.copy(response) == response


def test_a_normalized_view_looks_names_up_directly_and_falls_back_to_reading() -> None:
    source = {"content-type": "application/json", "X-Odd": "kept"}
    headers = Headers.view(source, normalized=True)
    assert headers.get("Content-Type") == "application/json"
    assert headers["x-odd"] == "kept"  # not lower-case at the source: found by reading
    assert headers.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        headers["missing"]
    assert headers == Headers(source)


_INJECTED = "a\r\nSet-Cookie: stolen=1"


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: HttpResponse.json({}, headers={"X-A": _INJECTED}), id="json"),
        pytest.param(lambda: HttpResponse.text("t", headers={"X-A": _INJECTED}), id="text"),
        pytest.param(lambda: HttpResponse.binary(b"b", headers={"X-A": _INJECTED}), id="binary"),
        pytest.param(lambda: HttpResponse.empty(headers={"X-A": _INJECTED}), id="empty"),
        pytest.param(
            lambda: HttpResponse.problem(400, "c", "d", headers={"X-A": _INJECTED}), id="problem"
        ),
        pytest.param(lambda: HttpResponse(200, Headers({"X-A": _INJECTED})), id="constructor"),
        pytest.param(
            lambda: HttpResponse.text("t").with_header("x-a", _INJECTED), id="with_header"
        ),
        pytest.param(
            lambda: dataclasses.replace(
                HttpResponse.text("t"), headers=Headers({"x-a": _INJECTED})
            ),
            id="replace",
        ),
        pytest.param(lambda: HttpResponse.text("t", media_type="text/html\n"), id="media_type"),
        pytest.param(lambda: HttpResponse.text("t").set_cookie("a", "1", path="/\r\n"), id="path"),
        pytest.param(
            lambda: HttpResponse.text("t").set_cookie("a", "1", domain="x\0"), id="domain"
        ),
    ],
)
def test_a_control_character_in_a_response_header_is_refused_where_it_is_built(
    build: Any,
) -> None:
    with pytest.raises(InvalidHeaderError) as info:
        build()
    assert info.value.code == "invalid_header"
    assert info.value.status == 500
    assert "stolen" not in str(info.value)
    assert "control character" in str(info.value)


@pytest.mark.parametrize("char", [*(chr(c) for c in range(32) if c != 9), "\x7f"])
def test_every_control_character_but_tab_is_refused(char: str) -> None:
    with pytest.raises(InvalidHeaderError, match="'x-a' has a control character"):
        HttpResponse.json({}, headers={"x-a": f"a{char}b"})


@pytest.mark.parametrize(
    "name", ["", "x a", "x:a", "x\r\ny", "x\0", "(x)", "x/y", "caf\u00e9", 'x"', "x@y"]
)
def test_a_response_header_name_must_be_a_token(name: str) -> None:
    with pytest.raises(InvalidHeaderError, match="is not an HTTP token"):
        HttpResponse.empty(headers={name: "v"})
    with pytest.raises(InvalidHeaderError, match="is not an HTTP token"):
        HttpResponse.empty().with_header(name, "v")


def test_an_invalid_cookie_name_is_an_invalid_header() -> None:
    with pytest.raises(InvalidHeaderError, match="cookie name 'a b'"):
        HttpResponse.empty().set_cookie("a b", "1")


def test_header_values_are_strings() -> None:
    with pytest.raises(InvalidHeaderError, match="not a string"):
        HttpResponse.empty(headers={"x-count": 5})  # type: ignore[dict-item]  # the point


def test_what_http_carries_is_accepted_in_responses() -> None:
    names = "!#$%&'*+-.^_`|~09azAZ"
    response = HttpResponse.json(
        {},
        headers={names: "tab\there, caf\u00e9, \u20ac, quotes \"'", "x-empty": ""},
    ).set_cookie("a", "line\r\nbreak")  # a cookie value is quoted, never raw
    assert response.headers[names] == "tab\there, caf\u00e9, \u20ac, quotes \"'"
    assert "\r" not in response.headers["set-cookie"]


def test_request_headers_are_never_checked() -> None:
    # Providers hand over what the client sent; a request is never refused for it.
    request = HttpRequest("GET", "/", headers=Headers([("x a", "b\r\nc"), ("x-b", "\0")]))
    assert request.headers["x a"] == "b\r\nc"
    viewed = Headers.view({"x a": "b\r\nc"})
    assert viewed["x a"] == "b\r\nc"
