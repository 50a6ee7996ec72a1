"""Validating JSON and Python values against a declared type: the one place pydantic is used.

pydantic is imported on first use, when a handler or provider declares a type
that needs validation (a model, a dataclass, ``list[int]``...), never at import.
Plain ``dict``, ``list`` and ``Any`` need nothing beyond JSON parsing, so they
never load it. pydantic's errors are translated here into polyserve's own
(``EventValidationError`` with field errors, ``MalformedEventError`` for bad JSON).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from polyserve._hints import args as get_args
from polyserve._hints import form
from polyserve._hints import origin as get_origin
from polyserve.errors import (
    EventValidationError,
    FieldError,
    MalformedEventError,
    MissingDependencyError,
)
from polyserve.events._body import parse_json

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Validator"]


# What the ``pydantic`` extra of ``polyserve-core`` pins: the versions validation supports.
_PYDANTIC_REQUIREMENT = "pydantic>=2.6,<3"
_PYDANTIC_EXTRA = "polyserve-core[pydantic]"
_PYDANTIC_RANGE = ((2, 6), (3, 0))


def _check_pydantic_version(version: str, *, feature: str = "validation") -> None:
    """Check that ``version`` (``pydantic.VERSION``) is one that validation supports.

    Raises:
        MissingDependencyError: the version is outside ``_PYDANTIC_REQUIREMENT`` (or
            unreadable); the message names the extra that installs a supported one.
    """
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        major = minor = -1
    low, high = _PYDANTIC_RANGE
    if not low <= (major, minor) < high:
        raise MissingDependencyError(
            "pydantic",
            feature=feature,
            extra=_PYDANTIC_EXTRA,
            requirement=_PYDANTIC_REQUIREMENT,
            found=version,
        )


class Validator:
    """Validates values against one type; built once per parameter, loads pydantic on first use."""

    __slots__ = ("_error", "_plain", "_tp", "_validate_json", "_validate_python")

    def __init__(self, tp: Any) -> None:
        self._tp = tp
        self._plain = _plain_container(tp)
        self._validate_json: Any = None
        self._validate_python: Any = None
        self._error: type[Exception] = Exception

    def _load(self) -> None:
        # The lazy import this module exists for. pydantic is an optional dependency of
        # the core, so its absence, or a version this code was not written for, is
        # reported here with what to install rather than as a bare ImportError.
        feature = f"validating {getattr(self._tp, '__name__', repr(self._tp))}"
        try:
            import pydantic
        except ImportError as exc:
            raise MissingDependencyError(
                "pydantic",
                feature=feature,
                extra=_PYDANTIC_EXTRA,
                requirement=_PYDANTIC_REQUIREMENT,
            ) from exc
        _check_pydantic_version(pydantic.VERSION, feature=feature)
        from pydantic import BaseModel, TypeAdapter, ValidationError

        self._error = ValidationError
        if isinstance(self._tp, type) and issubclass(self._tp, BaseModel):
            self._validate_python = self._tp.model_validate
            self._validate_json = self._tp.model_validate_json
        else:
            adapter = TypeAdapter(self._tp)
            self._validate_python = adapter.validate_python
            self._validate_json = adapter.validate_json

    def from_json(self, data: bytes | str, loc: tuple[str, ...]) -> Any:
        """``data`` parsed as JSON and validated; ``loc`` prefixes the error locations.

        Raises:
            MalformedEventError: code ``invalid_json`` when ``data`` is not JSON.
            EventValidationError: the value does not match the type.
        """
        if self._plain is not None:
            return self.from_python(parse_json(data, ".".join(loc) or "payload"), loc)
        if self._validate_json is None:
            self._load()
        try:
            return self._validate_json(data)
        except self._error as exc:
            raise translate(exc, loc) from None

    def from_python(self, data: Any, loc: tuple[str, ...]) -> Any:
        """``data`` validated (and converted) against the type.

        Raises:
            EventValidationError: the value does not match the type.
        """
        if self._plain is not None:
            if not isinstance(data, self._plain):
                kind = " or ".join(t.__name__ for t in self._plain)
                raise EventValidationError([FieldError(loc, f"expected {kind}", "type_error")])
            return data
        if self._validate_python is None:
            self._load()
        try:
            return self._validate_python(data)
        except self._error as exc:
            raise translate(exc, loc) from None


def _plain_container(tp: Any) -> tuple[type, ...] | None:
    any_ = form("Any")
    if tp is any_ or tp is object:
        return (object,)
    origin = get_origin(tp) or tp
    args = get_args(tp)
    if origin in (dict, Mapping) and (not args or args == (str, any_)):
        return (dict,)
    if origin in (list, Sequence) and (not args or args == (any_,)):
        return (list,)
    return None


def translate(exc: Any, loc: tuple[str, ...]) -> Exception:
    """polyserve's error for a pydantic ``ValidationError``, locations under ``loc``."""
    fields: list[FieldError] = []
    for e in exc.errors(include_url=False, include_context=False, include_input=False):
        kind = e["type"]
        if kind == "json_invalid":
            return MalformedEventError(
                f"{'.'.join(loc) or 'payload'} is not valid JSON", code="invalid_json"
            )
        fields.append(FieldError((*loc, *e["loc"]), e["msg"], kind))
    return EventValidationError(fields)
