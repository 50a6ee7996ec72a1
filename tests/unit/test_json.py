"""``polyserve._json.dumps``: compact UTF-8 JSON for handler results."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json.encoder
import uuid

import pytest

from polyserve import _json


class _Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class _Pet:
    name: str
    born: dt.date


_VALUE = {
    "text": "café ✓",
    "numbers": [1, -2.5, 10**20],
    "flags": [True, False, None],
    "when": dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc),
    "id": uuid.UUID(int=7),
    "price": decimal.Decimal("1.10"),
    "colour": _Colour.RED,
    "pet": _Pet("Rex", dt.date(2020, 1, 2)),
    "tags": ("a", "b"),
}
_EXPECTED = (
    '{"text":"café ✓","numbers":[1,-2.5,100000000000000000000],"flags":[true,false,null],'
    '"when":"2024-05-01T10:00:00+00:00","id":"00000000-0000-0000-0000-000000000007",'
    '"price":"1.10","colour":"red","pet":{"name":"Rex","born":"2020-01-02"},"tags":["a","b"]}'
).encode()


@pytest.fixture(params=["accelerated", "pure python"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each run builds its encoder afresh; "pure python" is a json without its C part.
    monkeypatch.setattr(_json, "_encode", None)
    if request.param == "pure python":
        monkeypatch.setattr(json.encoder, "c_make_encoder", None)


@pytest.mark.usefixtures("encoder")
def test_results_encode_compactly_as_utf8() -> None:
    assert _json.dumps(_VALUE) == _EXPECTED
    assert _json.dumps("plain") == b'"plain"'
    assert _json.dumps(None) == b"null"


@pytest.mark.usefixtures("encoder")
def test_unencodable_values_raise_type_error() -> None:
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        _json.dumps({"x": object()})


@pytest.mark.usefixtures("encoder")
@pytest.mark.parametrize(
    "value",
    ["G\ud800T", "\udfff", "\\\ud800", "ok \ud83d\ude00 \ud800\udc00", "\x00\ud800" * 3],
)
def test_lone_surrogates_are_written_as_their_json_escape(value: str) -> None:
    encoded = _json.dumps({value: [value]})
    encoded.decode("utf-8")  # valid UTF-8 throughout
    # What a JSON parser reads back: a pair of escapes is one character to it.
    expected = value.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    assert json.loads(encoded) == {expected: [expected]}
