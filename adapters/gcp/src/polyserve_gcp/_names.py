"""How native source ids become logical names (the entry points' ``names`` option)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Names"]


class Names:
    """The ``names`` option of the entry points: native source id -> logical name.

    A native source has a long and a short id (``projects/p/topics/orders`` and
    ``orders``); either may be a key. Without a mapping the short id is the name.
    """

    __slots__ = ("_names",)

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self._names = dict(names or {})

    def logical(self, *ids: str | None) -> str:
        """The mapped name of the first id that has one, else the last id given."""
        present = [i for i in ids if i]
        for native in present:
            mapped = self._names.get(native)
            if mapped:
                return mapped
        return present[-1] if present else ""
