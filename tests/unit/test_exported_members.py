from __future__ import annotations

import importlib

import pytest

import polyserve


def test_all_lists_every_lazy_export_once() -> None:
    assert len(polyserve.__all__) == len(set(polyserve.__all__))
    assert set(polyserve.__all__) == set(polyserve._EXPORTS)


def test_every_export_resolves_to_an_object_of_that_name() -> None:
    for name in polyserve.__all__:
        value = getattr(polyserve, name)
        assert getattr(value, "__name__", name) in (name, "UnionType") or name == "Event"


def test_exports_are_defined_in_their_documented_module() -> None:
    for name in polyserve.__all__:
        module = importlib.import_module(polyserve._EXPORTS[name])
        assert getattr(module, name) is getattr(polyserve, name)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        getattr(polyserve, "NoSuchThing")  # noqa: B009  # the lookup itself is under test


def test_principal_is_exported_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, polyserve; assert 'polyserve.identity' not in sys.modules; "
        "from polyserve import Principal; print(Principal.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "polyserve.identity"
    assert "Principal" in polyserve.__all__
