"""Small immutable records for the modules loaded at import time.

``dataclasses`` imports ``inspect``, which costs a cold start about ten
milliseconds, so the classes an app is built from (routes, registrations, field
errors) use this base instead. The events, built only once requests arrive, are
real dataclasses.
"""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Value"]


class Value:
    """An immutable, slotted record whose equality, hash and ``repr`` come from ``_fields``.

    Subclasses declare ``__slots__`` and ``_fields`` (the public fields, in order) and
    set their slots in ``__init__`` with ``object.__setattr__``.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"
