"""``parse_json``, shared by every event that carries a JSON body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyserve.errors import MalformedEventError
from polyserve.events._body import parse_json

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_padding = st.text(alphabet=" \t\n\r\x0b\x0c\u2003\u00a0", max_size=3)


def _outcome(parse: object, data: str | bytes) -> tuple[str, object]:
    try:
        return "ok", repr(parse(data))  # type: ignore[operator]  # repr: NaN != NaN
    except (ValueError, MalformedEventError):
        return "error", None


def _loads_utf8(data: str | bytes) -> object:
    """``json.loads``, but bytes are UTF-8 (RFC 8259, section 8.1), with or without a BOM:
    ``json.loads`` itself would also take bytes that look like UTF-16 or UTF-32."""
    if isinstance(data, bytes):
        data = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")  # UnicodeError: a ValueError
    return json.loads(data)


def test_bytes_are_utf8_never_utf16() -> None:
    assert json.loads(b"0\x00") == 0  # json.loads reads it as UTF-16-LE "0"
    with pytest.raises(MalformedEventError):
        parse_json(b"0\x00", "body")


@given(value=_json_values, before=_padding, after=_padding)
def test_parse_json_agrees_with_json_loads_on_json(value: object, before: str, after: str) -> None:
    text = before + json.dumps(value) + after
    for data in (text, text.encode()):
        assert _outcome(lambda d: parse_json(d, "body"), data) == _outcome(_loads_utf8, data)


@given(st.text(max_size=20) | st.binary(max_size=20))
def test_parse_json_agrees_with_json_loads_on_anything(data: str | bytes) -> None:
    assert _outcome(lambda d: parse_json(d, "body"), data) == _outcome(_loads_utf8, data)


@pytest.mark.parametrize(
    "bad", ["{} x", "{}\u2003", "\ufeff{}", "", "{", b"\xff", b"\xef\xbb\xbf["]
)
def test_invalid_json_is_a_malformed_event(bad: str | bytes) -> None:
    with pytest.raises(MalformedEventError) as info:
        parse_json(bad, "request body")
    assert info.value.code == "invalid_json"
    assert info.value.detail.startswith("request body is not valid JSON")


def _nested(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + ("1" if opener != "[" else "") + closer * depth


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda t: t, id="str, the scanner"),
        pytest.param(str.encode, id="utf-8 bytes, the scanner"),
        pytest.param(lambda t: " " + t, id="leading space, json.loads"),
        pytest.param(lambda t: t.encode("utf-16"), id="utf-16, json.loads"),
    ],
)
def test_json_nested_past_the_stack_is_invalid_json_not_a_recursion_error(
    opener: str, wrap: Any
) -> None:
    with pytest.raises(MalformedEventError) as info:
        parse_json(wrap(_nested(100_000, opener)), "request body")
    assert info.value.code == "invalid_json"
    assert info.value.detail == "request body is not valid JSON: nested too deeply"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_json_nested_a_little_still_parses() -> None:
    assert parse_json(_nested(50), "body") == json.loads(_nested(50))
