"""The test suites' own layout: adapter suites stand alone, shared helpers live once.

An adapter's tests import what they share with other suites from
``polyserve_testkit`` (a workspace package), never from the root ``tests``
directory, so that ``nox -s adapter`` runs them with only the core, the adapter and
the test kit installed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITES = [ROOT / "tests", *sorted((ROOT / "adapters").glob("*/tests")), ROOT / "testkit"]


def _python_files(*roots: Path) -> list[Path]:
    return [
        p for root in roots for p in sorted(root.rglob("*.py")) if "node_modules" not in p.parts
    ]


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_adapter_tests_do_not_import_the_root_tests_package() -> None:
    adapter_tests = _python_files(*sorted((ROOT / "adapters").glob("*/tests")))
    assert len(adapter_tests) > 50
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m == "tests" or m.startswith("tests.")
        )
        for path in adapter_tests
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_test_kit_imports_no_test_directory() -> None:
    for path in _python_files(ROOT / "testkit"):
        found = _imported_modules(path)
        assert not {m for m in found if m.split(".")[0] in ("tests", "adapters")}, path


def test_shared_helper_classes_are_defined_once() -> None:
    shared = {"Recorder", "FakeLambdaContext", "NativeResponse", "StoreContract"}
    defined: dict[str, list[str]] = {}
    for path in _python_files(*SUITES):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name in shared:
                defined.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in defined.items() if len(paths) > 1} == {}
    assert set(defined) == shared
