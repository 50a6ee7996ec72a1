"""polyserve_gcp's public names, and what importing it costs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

import polyserve_gcp

SDKS = ("flask", "werkzeug", "functions_framework", "cloudevents", "pydantic")


def test_all_is_sorted_and_lists_every_lazy_export_once() -> None:
    assert polyserve_gcp.__all__ == sorted(set(polyserve_gcp.__all__))
    assert set(polyserve_gcp.__all__) == set(polyserve_gcp._EXPORTS)


def test_exports_are_the_functions_of_their_modules() -> None:
    for name in polyserve_gcp.__all__:
        module = importlib.import_module(polyserve_gcp._EXPORTS[name])
        assert getattr(polyserve_gcp, name) is getattr(module, name)
        assert getattr(module, name).__name__ == name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        getattr(polyserve_gcp, "no_such_thing")  # noqa: B009  # the lookup itself is under test


def test_dir_lists_the_exports() -> None:
    assert set(polyserve_gcp.__all__) <= set(dir(polyserve_gcp))


def test_importing_and_building_every_target_loads_no_sdk() -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        import polyserve_gcp, polyserve_gcp.types
        from polyserve import App
        app = App("cold")
        polyserve_gcp.http(app)
        polyserve_gcp.cloudevent(app)
        polyserve_gcp.background(app)
        print(json.dumps(sorted(m for m in {SDKS!r} if m in sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
