"""Turning results into stored bytes and back, and values into stable hashes.

A stored result is a kind tag on the first line, then the data::

    json\n<JSON value>                                    JSON values, models, dataclasses
    bytes\n<the bytes>
    http\n{"status": 201, "headers": [[name, value], ...]}\n<the body>

pydantic models are dumped with ``mode="json"`` and dataclasses field by field, so a
replay returns the JSON value, not the original object. An ``HttpResponse`` comes back
exactly: status, every header in order (repeats included) and the body bytes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from polyserve._json import _default as _json_default
from polyserve.events import Headers, HttpRequest, HttpResponse
from polyserve.idempotency.errors import CorruptRecordError, IdempotencyError

__all__ = ["canonical", "decode_result", "digest", "encode_result"]


def encode_result(value: Any) -> bytes:
    """``value`` as stored bytes.

    Raises:
        IdempotencyError: code ``result_not_serializable`` when the value is not one of
            the supported kinds (JSON values, pydantic models, dataclasses, bytes,
            ``HttpResponse``).
    """
    if isinstance(value, HttpResponse):
        meta = {"status": value.status, "headers": value.headers.multi_items()}
        return b"http\n" + _ENCODER.encode(meta).encode() + b"\n" + value.body
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"bytes\n" + bytes(value)
    try:
        return b"json\n" + _ENCODER.encode(value).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise IdempotencyError(
            f"cannot store a result of type {type(value).__name__}: {exc}",
            code="result_not_serializable",
        ) from None


def decode_result(data: bytes, *, add_header: tuple[str, str] | None = None) -> Any:
    """The value ``encode_result`` stored; ``add_header`` is appended to a response's headers.

    Raises:
        CorruptRecordError: ``data`` is not a stored result.
    """
    kind, _, rest = data.partition(b"\n")
    if kind == b"http":
        if len(data) <= _MEMO_BYTES:
            return _decode_response_memo(rest, add_header)
        return _decode_response(rest, add_header)
    try:
        if kind == b"json":
            return json.loads(rest)
    except (ValueError, RecursionError) as exc:
        raise CorruptRecordError(f"stored result cannot be decoded: {exc!r}") from None
    if kind == b"bytes":
        return rest
    raise CorruptRecordError(f"stored result has unknown kind {kind[:16]!r}")


def _decode_response(rest: bytes, add_header: tuple[str, str] | None) -> HttpResponse:
    try:
        meta, newline, body = rest.partition(b"\n")
        fields = json.loads(meta)
        status, pairs = fields["status"], fields["headers"]
        if not newline or not isinstance(status, int) or not isinstance(pairs, list):
            raise TypeError("bad status, headers or body")
        items = [_pair(p) for p in pairs]
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptRecordError(f"stored result cannot be decoded: {exc!r}") from None
    if add_header is not None:
        items.append(add_header)
    return HttpResponse(status, Headers(items), body)


# Replays of one small response are decoded once: an HttpResponse (its Headers and body
# included) is immutable, so every replay can share it. JSON values are mutable and are
# decoded afresh each time.
_MEMO_BYTES = 8 * 1024
_decode_response_memo = functools.lru_cache(maxsize=256)(_decode_response)


def canonical(value: Any) -> bytes:
    """A stable JSON encoding of ``value``: sorted keys, no spaces, bytes as base64.

    Raises:
        TypeError: the value (or something inside it) has no JSON form, or it is
            nested too deeply to encode (an event payload built to exhaust the stack).
    """
    try:
        text = _CANONICAL.encode(value)
    except ValueError as exc:  # a circular reference
        raise TypeError(str(exc)) from None
    except RecursionError:
        raise TypeError("the value is nested too deeply to encode") from None
    return text.encode()


def digest(*parts: bytes) -> str:
    """The SHA-256 of ``parts``, each length-prefixed so that no two splits collide."""
    return hashlib.sha256(b"".join(b"%d:%b" % (len(p), p) for p in parts)).hexdigest()


def _canonical_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _b64(bytes(obj))
    if isinstance(obj, HttpRequest):
        # A request counts as what it asks for; its other headers (tracing, dates) vary
        # between deliveries of the same request.
        return {"method": obj.method.upper(), "path": obj.path, "body": _b64(obj.body)}
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(canonical(item).decode() for item in obj)
    return _json_default(obj)


# Encoders are built once: json.dumps with options builds a new one on every call.
# Results are encoded as the app renders them (polyserve._json), so replays match.
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"), ensure_ascii=False)
_CANONICAL = json.JSONEncoder(
    default=_canonical_default, sort_keys=True, separators=(",", ":"), ensure_ascii=False
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pair(item: Any) -> tuple[str, str]:
    name, value = item
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("header names and values must be strings")
    return name, value
