"""JSON encoding of handler results: pydantic models, dataclasses and common scalars."""

from __future__ import annotations

import dataclasses
import enum

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


__all__ = ["dumps"]


def _default(obj: Any) -> Any:
    # pydantic is never imported here: a model is recognised by its method.
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    # datetime, date, time; UUID and Decimal: matched by name so that importing
    # this module does not import their modules.
    kind = type(obj).__name__
    if kind in ("datetime", "date", "time") and hasattr(obj, "isoformat"):
        return obj.isoformat()
    if kind in ("UUID", "Decimal"):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


_encode: Callable[[Any], str] | None = None


def _encoder() -> Callable[[Any], str]:
    # One encoder for the process (json.dumps with options builds one per call),
    # created on first use so that importing polyserve does not import json.
    global _encode
    import json

    _encode = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False).encode
    return _encode


def dumps(data: Any) -> bytes:
    """Encode ``data`` as compact UTF-8 JSON."""
    return (_encode or _encoder())(data).encode()
