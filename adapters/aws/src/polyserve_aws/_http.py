"""Pieces shared by the HTTP sources (API Gateway, Function URLs, ALB): header maps and bodies."""

from __future__ import annotations

from polyserve.adapter import decode_base64
from polyserve.errors import MalformedEventError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


__all__ = ["multi_pairs", "pairs", "request_body"]


def pairs(value: Any, what: str, field: str) -> list[tuple[str, str]]:
    """``(name, value)`` pairs from the ``{name: value}`` map ``field`` (``None`` is empty)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise MalformedEventError(f"{what} {field} must be an object, got {type(value).__name__}")
    out = list(value.items())
    for name, item in out:
        if not isinstance(item, str):
            raise MalformedEventError(f"{what} {field} value of {name!r} must be a string")
    return out


def multi_pairs(value: Any, what: str, field: str) -> list[tuple[str, str]]:
    """``(name, value)`` pairs from the ``{name: [values]}`` map ``field``, repeats in order."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise MalformedEventError(f"{what} {field} must be an object, got {type(value).__name__}")
    out: list[tuple[str, str]] = []
    for name, items in value.items():
        if not isinstance(items, list):
            raise MalformedEventError(f"{what} {field} value of {name!r} must be a list")
        for item in items:
            if item is None:  # a key sent without a value
                item = ""
            elif not isinstance(item, str):
                raise MalformedEventError(f"{what} {field} value of {name!r} must be strings")
            out.append((name, item))
    return out


def request_body(raw: dict[str, Any], what: str) -> bytes:
    """The request body: ``body`` as UTF-8, or base64-decoded when ``isBase64Encoded``."""
    body = raw.get("body")
    if body is None or body == "":
        return b""
    if raw.get("isBase64Encoded") is True:
        return decode_base64(body, f"{what} body")
    if not isinstance(body, str):
        raise MalformedEventError(f"{what} body must be a string, got {type(body).__name__}")
    try:
        return body.encode()
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON
        raise MalformedEventError(f"{what} body is not valid Unicode") from None
