"""Turning results into stored bytes and back, and values into stable hashes.

A stored result is a small JSON document with a kind tag::

    {"t": "json", "v": <value>}                         JSON values, models, dataclasses
    {"t": "bytes", "v": "<base64>"}                     bytes
    {"t": "http", "status": 201, "headers": [[name, value], ...], "body": "<base64>"}

pydantic models are dumped with ``mode="json"`` and dataclasses field by field, so a
replay returns the JSON value, not the original object. An ``HttpResponse`` comes back
exactly: status, every header in order (repeats included) and the body bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from polyserve._json import _default as _json_default
from polyserve._json import dumps
from polyserve.errors import CorruptRecordError, IdempotencyError
from polyserve.events import Headers, HttpRequest, HttpResponse

__all__ = ["canonical", "decode_result", "digest", "encode_result"]


def encode_result(value: Any) -> bytes:
    """``value`` as stored bytes.

    Raises:
        IdempotencyError: code ``result_not_serializable`` when the value is not one of
            the supported kinds (JSON values, pydantic models, dataclasses, bytes,
            ``HttpResponse``).
    """
    if isinstance(value, HttpResponse):
        document = {
            "t": "http",
            "status": value.status,
            "headers": value.headers.multi_items(),
            "body": _b64(value.body),
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b'{"t":"bytes","v":"' + base64.b64encode(bytes(value)) + b'"}'
    try:
        data = dumps(value)
    except (TypeError, ValueError) as exc:
        raise IdempotencyError(
            f"cannot store a result of type {type(value).__name__}: {exc}",
            code="result_not_serializable",
        ) from None
    return b'{"t":"json","v":' + data + b"}"


def decode_result(data: bytes) -> Any:
    """The value ``encode_result`` stored.

    Raises:
        CorruptRecordError: ``data`` is not a stored result.
    """
    try:
        document = json.loads(data)
        kind = document["t"]
        if kind == "json":
            return document["v"]
        if kind == "bytes":
            return base64.b64decode(document["v"], validate=True)
        if kind == "http":
            status = document["status"]
            pairs = document["headers"]
            if not isinstance(status, int) or not isinstance(pairs, list):
                raise TypeError("bad status or headers")
            headers = Headers(_pair(p) for p in pairs)
            return HttpResponse(status, headers, base64.b64decode(document["body"], validate=True))
    except (ValueError, TypeError, KeyError, IndexError, binascii.Error) as exc:
        raise CorruptRecordError(f"stored result cannot be decoded: {exc!r}") from None
    raise CorruptRecordError(f"stored result has unknown kind {kind!r}")


def canonical(value: Any) -> bytes:
    """A stable JSON encoding of ``value``: sorted keys, no spaces, bytes as base64.

    Raises:
        TypeError: the value (or something inside it) has no JSON form.
    """
    try:
        text = json.dumps(
            value, default=_canonical_default, sort_keys=True, separators=(",", ":"),
            ensure_ascii=False,
        )  # fmt: skip
    except ValueError as exc:  # a circular reference
        raise TypeError(str(exc)) from None
    return text.encode()


def digest(*parts: bytes) -> str:
    """The SHA-256 of ``parts``, each length-prefixed so that no two splits collide."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pair(item: Any) -> tuple[str, str]:
    name, value = item
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("header names and values must be strings")
    return name, value
