"""Decoding shared by the events that carry a byte body."""

from __future__ import annotations

import json
from typing import Any

from polyserve.errors import MalformedEventError


def parse_json(body: bytes | bytearray | str, what: str) -> Any:
    """``body`` parsed as JSON, or ``MalformedEventError`` (code ``invalid_json``)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEventError(f"{what} is not valid JSON: {exc}", code="invalid_json") from None
