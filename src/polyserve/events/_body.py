"""Decoding shared by the events that carry a byte body."""

from __future__ import annotations

from polyserve.errors import MalformedEventError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def parse_json(body: bytes | bytearray | str, what: str) -> Any:
    """``body`` parsed as JSON, or ``MalformedEventError`` (code ``invalid_json``)."""
    if isinstance(body, (bytes, bytearray)) and body[:1] not in (
        b"\xef",
        b"\xfe",
        b"\xff",
        b"\x00",
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
