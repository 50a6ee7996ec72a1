from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from pydantic import BaseModel

from polyserve import CorruptRecordError, Headers, HttpResponse, IdempotencyError
from polyserve.idempotency._serialize import canonical, decode_result, digest, encode_result


class Item(BaseModel):
    name: str
    at: dt.datetime


@dataclasses.dataclass
class Pair:
    left: int
    right: list[str]


@pytest.mark.parametrize(
    ("value", "replayed"),
    [
        (None, None),
        (0, 0),
        ("text", "text"),
        ([1, "a", None], [1, "a", None]),
        ({"nested": {"ok": True}}, {"nested": {"ok": True}}),
        (
            Item(name="n", at=dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)),
            {"name": "n", "at": "2024-01-02T00:00:00Z"},
        ),
        (Pair(1, ["x"]), {"left": 1, "right": ["x"]}),
        (b"\x00\xffbinary", b"\x00\xffbinary"),
        (bytearray(b"ba"), b"ba"),
    ],
)
def test_results_round_trip_as_json_values(value: Any, replayed: Any) -> None:
    assert decode_result(encode_result(value)) == replayed


def test_http_response_is_rebuilt_exactly() -> None:
    response = HttpResponse(
        207,
        Headers([("x-b", "2"), ("Set-Cookie", "a=1"), ("x-a", "1"), ("set-cookie", "b=2")]),
        bytes(range(256)),
    )
    stored = encode_result(response)
    assert stored.endswith(b"\n" + bytes(range(256))), "the body is stored as it is"
    again = decode_result(stored)
    assert isinstance(again, HttpResponse)
    assert again.status == 207
    assert again.headers.multi_items() == response.headers.multi_items()
    assert again.body == response.body


def test_unserialisable_result_has_a_stable_code() -> None:
    with pytest.raises(IdempotencyError) as info:
        encode_result({"lock": object()})
    assert info.value.code == "result_not_serializable"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"json",
        b"json\n",
        b"json\n{not json",
        b"json\n\xff\xfe",
        b"pickle\n...",
        b"\x00garbage",
        b'http\n{"status": "200", "headers": []}\n',
        b'http\n{"status": 200, "headers": [["a"]]}\n',
        b'http\n{"status": 200, "headers": [[1, 2]]}\n',
        b'http\n{"status": 200, "headers": {}}\n',
        b'http\n{"status": 200, "headers": []}',
        b'http\n{"headers": []}\nbody',
        b"http\n[]\nbody",
    ],
)
def test_unreadable_results_are_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        decode_result(data)


def test_canonical_is_stable_across_key_order_and_types() -> None:
    assert (
        canonical({"b": 1, "a": [1, 2]})
        == canonical({"a": [1, 2], "b": 1})
        == (b'{"a":[1,2],"b":1}')
    )
    assert json.loads(canonical(b"\x01")) == base64.b64encode(b"\x01").decode()
    assert canonical({3, 1, 2}) == canonical({2, 3, 1})
    assert canonical(Pair(1, ["x"])) == b'{"left":1,"right":["x"]}'


def test_canonical_refuses_what_has_no_json_form() -> None:
    with pytest.raises(TypeError):
        canonical(object())
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(TypeError):
        canonical(looped)


def test_digest_separates_parts() -> None:
    assert digest(b"ab", b"c") != digest(b"a", b"bc")
    assert len(digest(b"x")) == 64


def test_replayed_header_is_added_to_responses_only() -> None:
    response = HttpResponse.json({"a": 1}, 201)
    again = decode_result(encode_result(response), add_header=("idempotency-replayed", "true"))
    assert again.headers.multi_items() == [
        ("content-type", "application/json"),
        ("idempotency-replayed", "true"),
    ]
    assert decode_result(encode_result({"a": 1}), add_header=("x", "y")) == {"a": 1}


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_values_nested_past_the_stack_are_refused_with_the_documented_errors() -> None:
    deep = _deep(100_000)
    with pytest.raises(TypeError, match="nested too deeply"):
        canonical(deep)
    with pytest.raises(IdempotencyError) as info:
        encode_result({"deep": deep})
    assert info.value.code == "result_not_serializable"
    with pytest.raises(CorruptRecordError):
        decode_result(b"json\n" + b"[" * 100_000 + b"]" * 100_000)
