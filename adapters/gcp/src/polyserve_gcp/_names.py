"""How native source ids become logical names (the entry points' ``names`` option)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Names", "logical"]


def logical(names: Mapping[str, str], *ids: str | None) -> str:
    """The mapped name of the first id that has one, else the last id given.

    A native source has a long and a short id (``projects/p/topics/orders`` and
    ``orders``); either may be a key of ``names``. Without a mapping the short id
    is the name.
    """
    present = [i for i in ids if i]
    for native in present:
        mapped = names.get(native)
        if mapped:
            return mapped
    return present[-1] if present else ""


class Names(dict[str, str]):
    """The ``names`` option of the entry points (native source id -> logical name)."""

    __slots__ = ()

    def logical(self, *ids: str | None) -> str:
        """``logical(self, *ids)``."""
        return logical(self, *ids)
