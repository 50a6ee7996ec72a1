"""JSON encoding of handler results: pydantic models, dataclasses and common scalars."""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


__all__ = ["dumps"]


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


_encode: Callable[[Any], str] | None = None


def _encoder() -> Callable[[Any], str]:
    # One encoder for the process, created on first use so that importing polyserve
    # does not import json. json.dumps builds a C encoder on every call; where the C
    # accelerator is there (CPython, Pyodide), one is built here and kept. It does
    # not track circular references: a circular result ends in RecursionError rather
    # than ValueError, a 500 either way.
    global _encode
    import json
    import json.encoder

    # Both are None or absent where json has no C accelerator.
    make = getattr(json.encoder, "c_make_encoder", None)
    encode_string = getattr(json.encoder, "c_encode_basestring", None)
    iterencode = None
    if make is not None and encode_string is not None:
        try:
            iterencode = make(None, _default, encode_string, None, ":", ",", False, False, True)
        except TypeError:  # a Python whose accelerator takes other arguments
            iterencode = None
    if iterencode is not None:
        chunks, join = iterencode, "".join

        def encode(data: Any) -> str:
            return join(chunks(data, 0))

        _encode = encode
        global _chunks
        _chunks = chunks
    else:
        options = {"separators": (",", ":"), "ensure_ascii": False}
        _encode = json.JSONEncoder(default=_default, **options).encode  # type: ignore[arg-type]
    return _encode


# The kept C encoder, called straight from dumps where there is one.
_chunks: Callable[[Any, int], list[str]] | None = None


def dumps(data: Any) -> bytes:
    """Encode ``data`` as compact UTF-8 JSON.

    A lone surrogate in a string (an event's text can hold one: JSON and JavaScript
    strings may) has no UTF-8 form; it is written as its JSON escape (``\\ud800``),
    so that the result is valid JSON and an error answer quoting such text never fails.
    """
    text = "".join(_chunks(data, 0)) if _chunks is not None else (_encode or _encoder())(data)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Surrogates can only be inside JSON strings, and there "\udXXX" is their
        # escape: backslashreplace writes exactly that.
        return text.encode("utf-8", "backslashreplace")
