"""JSON encoding of handler results: pydantic models, dataclasses and common scalars."""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


__all__ = ["dumps", "log_line"]


def _default(obj: Any) -> Any:
    # Only values json cannot encode get here, so these imports cost nothing per call
    # for plain results; pydantic is never imported: a model is recognised by its method.
    import dataclasses
    import enum

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


def _kept_encoder(
    default: Callable[[Any], Any], *, ascii: bool, separators: tuple[str, str] = (",", ":")
) -> Callable[[Any], str]:
    """A compact JSON encoder kept for the process.

    ``json.dumps`` builds a C encoder on every call; where the C accelerator is there
    (CPython, Pyodide), one is built here once, straight from it: the ``json``
    package, whose modules compile regular expressions as they load, costs a first
    request 5 million instructions that a GET never uses. The encoder does not
    track circular references: a circular value ends in RecursionError rather than
    ValueError.
    """
    accelerator = _accelerator()
    make = getattr(accelerator, "make_encoder", None)
    escape = getattr(accelerator, "encode_basestring_ascii" if ascii else "encode_basestring", None)
    if make is not None and escape is not None:
        try:
            item, key = separators
            chunks = make(None, default, escape, None, key, item, False, False, True)
        except TypeError:  # a Python whose accelerator takes other arguments
            chunks = None
        if chunks is not None:
            join = "".join
            return lambda data: join(chunks(data, 0))
    import json

    encoder = json.JSONEncoder(default=default, separators=separators, ensure_ascii=ascii)
    return encoder.encode


def _accelerator() -> Any:
    # json's C accelerator, which json.encoder takes its encoder from; None without it.
    try:
        import _json
    except ImportError:
        return None
    return _json


_encode: Callable[[Any], str] | None = None
_encode_line: Callable[[Any], str] | None = None


def dumps(data: Any) -> bytes:
    """Encode ``data`` as compact UTF-8 JSON.

    A lone surrogate in a string (an event's text can hold one: JSON and JavaScript
    strings may) has no UTF-8 form; it is written as its JSON escape (``\\ud800``),
    so that the result is valid JSON and an error answer quoting such text never fails.
    """
    global _encode
    if _encode is None:
        _encode = _kept_encoder(_default, ascii=False)
    text = _encode(data)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Surrogates can only be inside JSON strings, and there "\udXXX" is their
        # escape: backslashreplace writes exactly that.
        return text.encode("utf-8", "backslashreplace")


def log_line(record: Any) -> str:
    """``record`` as one line of ASCII JSON; values JSON cannot encode are written as text."""
    global _encode_line
    if _encode_line is None:
        _encode_line = _kept_encoder(str, ascii=True, separators=(", ", ": "))
    return _encode_line(record)
