"""Decoding shared by the events that carry a byte body."""

from __future__ import annotations

from polyserve.errors import MalformedEventError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


# First bytes that UTF-8 text without a BOM never starts with (a BOM, UTF-16/32).
_NOT_PLAIN_UTF8 = frozenset(b"\xef\xfe\xff\x00")
# The only whitespace JSON allows around a value (str.isspace takes more).
_JSON_SPACE = " \t\n\r"


def parse_json(body: bytes | bytearray | str, what: str) -> Any:
    """``body`` parsed as JSON, or ``MalformedEventError`` (code ``invalid_json``).

    ``what`` names the body in the error (``"message body"``). Adapters use this for
    payloads they read themselves, so that bad JSON fails alike everywhere.

    JSON nested deeper than the parser's recursion allows (about a thousand levels,
    less the caller's own stack) is invalid JSON too, never a ``RecursionError``.

    Accepts what ``json.loads`` accepts, with the same results. A ``str`` body, or a
    UTF-8 one without a BOM, goes straight to json's scanner, skipping the two Python
    layers of ``json.loads``; anything else, and anything the scanner refuses, goes
    through ``json.loads`` itself, which also words the error.
    """
    if body.__class__ is not str and (
        body.__class__ is bytes or isinstance(body, (bytes, bytearray))
    ):
        if body and body[0] in _NOT_PLAIN_UTF8:
            return _loads(body, what)  # UTF-16/32 or a BOM: json.loads detects the encoding
        try:
            body = body.decode()
        except UnicodeDecodeError:
            return _loads(body, what)
    scan = _scan or _load_scanner()
    try:
        value, end = scan(body, 0)
    except (StopIteration, ValueError):  # leading whitespace, or not JSON at all
        return _loads(body, what)
    except RecursionError:
        raise _too_deep(what) from None
    if end != len(body) and body[end:].strip(_JSON_SPACE):
        return _loads(body, what)  # trailing data: an error, worded by json.loads
    return value


_scan: Callable[[str, int], tuple[Any, int]] | None = None


def _load_scanner() -> Callable[[str, int], tuple[Any, int]]:
    # Created on first use, so that importing polyserve does not import json.
    global _scan
    import json

    # The decoder's scanner: json's C one where it has its accelerator. (typeshed
    # does not declare the attribute, which JSONDecoder sets in __init__.)
    scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    _scan = scan
    return scan


def _loads(body: bytes | bytearray | str, what: str) -> Any:
    import json

    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEventError(f"{what} is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise _too_deep(what) from None


def _too_deep(what: str) -> MalformedEventError:
    # json's C parser recurses once per level: a body nested deeply enough (a few
    # kilobytes of "[") exhausts the stack. The client gets the same 400 as for any
    # other JSON the parser cannot read.
    return MalformedEventError(f"{what} is not valid JSON: nested too deeply", code="invalid_json")
