"""Fast construction for frozen, slotted dataclasses.

A frozen dataclass's generated ``__init__`` stores every field through
``object.__setattr__``, a generic call that costs several times a plain
attribute store. Events and results are built on every invocation, so
``fast_init`` gives a class an ``__init__`` that stores the fields as plain
attributes on a twin class with the same slot layout, then turns the instance
back into the frozen class. The instance is frozen from the moment ``__init__``
returns, and the class stays an ordinary frozen dataclass: ``fields``,
``replace``, equality, hashing, ``repr`` and pickling are unchanged.

An instance of a subclass (which may add slots of its own) gets its fields as
the dataclass ``__init__`` would store them. A ``__post_init__`` runs as the
dataclass one would, once the instance is frozen. A class declared with
``init=False`` gets this ``__init__`` as its only one: dataclasses then does not
compile one only to have it replaced.

Why this exists: every ``object.__setattr__`` of a frozen dataclass's ``__init__``
costs, under CPython 3.11, more than a thousand instructions; events are built on
every request and for every record of a batch, and this ``__init__`` builds them in
about a third of the instructions. The benchmarks measure what it saves (see
docs/performance.md), which is why it is kept.
"""

from __future__ import annotations

from dataclasses import MISSING, fields

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T", bound=type)

__all__ = ["fast_init"]


def fast_init(cls: T) -> T:
    """Give the frozen, slotted dataclass ``cls`` a faster ``__init__`` with the same signature.

    A ``__post_init__`` (without init-only arguments) is called last, as the
    dataclass ``__init__`` calls it. ``cls`` may be declared with ``init=False``.

    Raises:
        TypeError: ``cls`` is not a frozen, slotted dataclass, or has keyword-only,
            non-init, init-only or class-variable fields (not supported).
    """
    params = getattr(cls, "__dataclass_params__", None)
    slots = cls.__dict__.get("__slots__")
    if params is None or not params.frozen or slots is None:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    cls_fields = fields(cls)
    if any(f.kw_only or not f.init for f in cls_fields):
        raise TypeError(f"{cls.__name__} has keyword-only or non-init fields")
    # fields() leaves out the pseudo-fields: InitVar and ClassVar annotations.
    if len(cls.__dataclass_fields__) != len(cls_fields):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} has init-only or class-variable fields")
    # Same slots, same base: CPython lets an instance switch between the two classes.
    twin = type(f"_Unfrozen{cls.__name__}", (), {"__slots__": slots, "__module__": cls.__module__})
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_twin": twin,
        "_set": object.__setattr__,
        "_names": tuple(f.name for f in cls_fields),
        "_MISSING": MISSING,
    }
    signature: list[str] = []
    values: list[str] = []
    for f in cls_fields:
        if f.default is not MISSING:
            namespace[f"_d_{f.name}"] = f.default
            signature.append(f"{f.name}=_d_{f.name}")
            values.append(f.name)
        elif f.default_factory is not MISSING:
            namespace[f"_f_{f.name}"] = f.default_factory
            signature.append(f"{f.name}=_MISSING")
            values.append(f"_f_{f.name}() if {f.name} is _MISSING else {f.name}")
        else:
            signature.append(f.name)
            values.append(f.name)
    names = [f.name for f in cls_fields]
    stored = list(zip(names, values, strict=True))
    post_init = ["    self.__post_init__()"] if hasattr(cls, "__post_init__") else []
    lines = [
        f"def __init__(self, {', '.join(signature)}):",
        "    if self.__class__ is not _cls:",  # a subclass: stored as dataclasses does
        f"        for name, value in zip(_names, ({', '.join(values)},)):",
        "            _set(self, name, value)",
        *(f"    {line}" for line in post_init),
        "        return",
        "    _set(self, '__class__', _twin)",
        *(f"    self.{name} = {value}" for name, value in stored),
        "    self.__class__ = _cls",
        *post_init,
    ]
    exec("\n".join(lines), namespace)  # the same technique dataclasses uses
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {**{f.name: f.type for f in cls_fields}, "return": None}
    type.__setattr__(cls, "__init__", init)
    return cls
