"""``typing``'s introspection of annotations, without importing ``typing``.

Importing ``typing`` costs a cold start about 12 million instructions (3 ms), and
the first request of an app whose handlers are annotated with plain classes
(``item_id: int``, ``-> dict``) needs nothing from it. Until some module imports
``typing``, no annotation can be one of its forms (``Annotated``, ``Optional``,
``Literal``...): the only generic annotations are the builtin ones, ``list[int]``
and ``int | None``, which carry their origin and arguments themselves. Once it is
imported (by the app, pydantic or anything else), these are ``typing``'s own
functions.
"""

from __future__ import annotations

import sys
import types

# Not ``typing.TYPE_CHECKING``: importing typing is what this module avoids.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["args", "form", "is_typeddict", "origin", "plain_hints"]


class _Absent:
    """Stands for a ``typing`` form while ``typing`` is not imported: no annotation is it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<typing not imported>"


_ABSENT = _Absent()


def origin(tp: Any) -> Any:
    """``typing.get_origin(tp)``."""
    typing = sys.modules.get("typing")
    if typing is not None:
        return typing.get_origin(tp)
    if isinstance(tp, types.GenericAlias):
        return tp.__origin__
    if isinstance(tp, types.UnionType):
        return types.UnionType
    return None


def args(tp: Any) -> tuple[Any, ...]:
    """``typing.get_args(tp)``."""
    typing = sys.modules.get("typing")
    if typing is not None:
        found: tuple[Any, ...] = typing.get_args(tp)
        return found
    if isinstance(tp, (types.GenericAlias, types.UnionType)):
        return tp.__args__
    return ()


def form(name: str) -> Any:
    """The ``typing`` special form ``name`` (``"Annotated"``, ``"Any"``...), or a stand-in
    that no annotation is while ``typing`` is not imported."""
    typing = sys.modules.get("typing")
    return _ABSENT if typing is None else getattr(typing, name)


def is_typeddict(tp: Any) -> bool:
    """``typing.is_typeddict(tp)``."""
    typing = sys.modules.get("typing")
    return typing is not None and bool(typing.is_typeddict(tp))


def plain_hints(annotations: dict[str, Any]) -> dict[str, Any] | None:
    """``annotations`` as ``typing.get_type_hints`` would resolve them, when that needs no
    ``typing``: it is not imported and no annotation is or holds a string (a forward
    reference, or any annotation under ``from __future__ import annotations``). ``None``
    otherwise."""
    if "typing" in sys.modules or any(map(_has_string, annotations.values())):
        return None
    # get_type_hints turns None into its class; nothing else changes a plain annotation.
    return {name: type(None) if a is None else a for name, a in annotations.items()}


def _has_string(tp: Any) -> bool:
    if isinstance(tp, (types.GenericAlias, types.UnionType)):
        # list["Pet"], list["Pet"] | None: get_type_hints resolves "Pet".
        return any(map(_has_string, tp.__args__))
    return isinstance(tp, str)
