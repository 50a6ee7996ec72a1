"""Decoding shared by the events that carry a byte body."""

from __future__ import annotations

from polyserve.errors import MalformedEventError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# First bytes that UTF-8 text without a BOM never starts with (a BOM, UTF-16/32).
_NOT_PLAIN_UTF8 = frozenset(b"\xef\xfe\xff\x00")


def parse_json(body: bytes | bytearray | str, what: str) -> Any:
    """``body`` parsed as JSON, or ``MalformedEventError`` (code ``invalid_json``)."""
    if (body.__class__ is bytes or isinstance(body, (bytes, bytearray))) and (
        not body or body[0] not in _NOT_PLAIN_UTF8
    ):
        # Most bodies are UTF-8 without a BOM: decoding first skips json's encoding
        # detection. Anything else (UTF-16/32, a BOM) goes to json.loads as bytes.
        try:  # noqa: SIM105  # contextlib.suppress would cost a context manager per call
            body = body.decode()
        except UnicodeDecodeError:
            pass
    import json  # on first use: importing polyserve does not import json

    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEventError(f"{what} is not valid JSON: {exc}", code="invalid_json") from None
