"""One list of supported Python versions: the classifiers, ``./dev test`` and nox agree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("adapters/*/pyproject.toml"))]


def _dev_versions() -> list[str]:
    found = re.search(r"^supported_pythons=\((.*)\)$", (ROOT / "dev").read_text(), re.MULTILINE)
    assert found is not None, "dev sets supported_pythons"
    return found[1].split()


def test_every_package_declares_the_versions_that_dev_tests() -> None:
    versions = _dev_versions()
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))))
    assert len(PYPROJECTS) == 5
    for pyproject in PYPROJECTS:
        text = pyproject.read_text()
        classifiers = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)
        assert classifiers == versions, pyproject
        assert f'requires-python = ">={versions[0]}"' in text, pyproject


def test_nox_runs_the_same_versions() -> None:
    found = re.search(r"^PYTHONS = \[(.*)\]$", (ROOT / "noxfile.py").read_text(), re.MULTILINE)
    assert found is not None, "noxfile.py sets PYTHONS"
    assert re.findall(r'"([\d.]+)"', found[1]) == _dev_versions()
