"""``fast_init``: frozen slotted dataclasses built quickly, still frozen dataclasses."""

from __future__ import annotations

import dataclasses
import pickle
from typing import TYPE_CHECKING, Any

import pytest

from polyserve._frozen import fast_init


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Point:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)
    note: Any = dataclasses.field(default=None, compare=False)


class _Labelled(_Point):
    __slots__ = ("label",)


def test_fast_init_keeps_the_signature_defaults_and_factories() -> None:
    a = _Point(1)
    b = _Point(x=1, y=0, tags=[])
    assert a == b
    assert a.tags == []
    assert a.tags is not _Point(1).tags
    assert _Point(1, 2, ["t"], "n") == _Point(1, 2, ["t"], "other")
    with pytest.raises(TypeError):
        _Point()  # type: ignore[call-arg]  # the point of the test
    with pytest.raises(TypeError):
        _Point(1, z=2)  # type: ignore[call-arg]  # the point of the test


def test_instances_are_frozen_and_of_the_class_itself() -> None:
    point = _Point(1, 2)
    assert type(point) is _Point
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 5  # type: ignore[misc]  # the point of the test
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y


def test_dataclass_functions_and_pickling_still_work() -> None:
    point = _Point(1, 2, ["a"])
    assert dataclasses.replace(point, y=3) == _Point(1, 3, ["a"])
    assert dataclasses.asdict(point) == {"x": 1, "y": 2, "tags": ["a"], "note": None}
    assert pickle.loads(pickle.dumps(point)) == point
    assert repr(point) == "_Point(x=1, y=2, tags=['a'], note=None)"


def test_subclasses_use_the_generated_init() -> None:
    labelled = _Labelled(1, 2)
    assert type(labelled) is _Labelled
    assert (labelled.x, labelled.y, labelled.tags) == (1, 2, [])


def test_only_frozen_slotted_dataclasses_are_accepted() -> None:
    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class InitOnly:
        x: int
        y: dataclasses.InitVar[int] = 0

        def __post_init__(self, y: int) -> None: ...

    for cls in (Mutable, NoSlots, InitOnly):
        with pytest.raises(TypeError):
            fast_init(cls)


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class _Positive:
    x: int

    def __post_init__(self) -> None:
        if self.x <= 0:
            raise ValueError("x must be positive")


def test_post_init_runs_on_a_frozen_instance() -> None:
    assert _Positive(1).x == 1
    with pytest.raises(ValueError, match="positive"):
        _Positive(0)
    with pytest.raises(ValueError, match="positive"):
        dataclasses.replace(_Positive(1), x=-1)


@fast_init
@dataclasses.dataclass(frozen=True, slots=True, init=False)
class _Bare:
    x: int
    tags: list[str] = dataclasses.field(default_factory=list)

    if TYPE_CHECKING:  # the __init__ fast_init gives, as type checkers should see it

        def __init__(self, x: int, tags: list[str] = ...) -> None: ...


class _BareChild(_Bare):
    __slots__ = ()


def test_a_class_declared_without_init_gets_this_one_as_its_only_one() -> None:
    assert _Bare(1) == _Bare(x=1, tags=[])
    assert _Bare(1).tags is not _Bare(1).tags
    assert dataclasses.replace(_Bare(1), x=2) == _Bare(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        _Bare(1).x = 2  # type: ignore[misc]  # the point of the test
    child = _BareChild(3, ["t"])
    assert (type(child), child.x, child.tags) == (_BareChild, 3, ["t"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.x = 4  # type: ignore[misc]  # the point of the test
