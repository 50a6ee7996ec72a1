"""``./dev`` on a machine without uv: a private uv, never an install into the system Python.

Each test runs a copy of ``dev`` in a temporary folder (so its ``.cache/`` is its own)
on a PATH that holds no uv and no pyenv shims, with ``/usr/bin/python3`` as the first
``python3``: what a fresh Debian machine has.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from polyserve_testkit.servers import skip_or_fail

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
_UV_VERSION = re.search(r'^uv_version="(.+)"$', (ROOT / "dev").read_text(), re.MULTILINE)
assert _UV_VERSION is not None, "dev sets uv_version"
UV_VERSION = _UV_VERSION[1]
_SYSTEM_DIRS = "/usr/bin:/bin"
_TIMEOUT = 300


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder holding a copy of ``dev`` and nothing else."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy2(ROOT / "dev", folder / "dev")
    return folder


def _env(path: str, **extra: str) -> dict[str, str]:
    # This process's environment (network and certificate settings included), less
    # whatever points at a Python, a venv or uv.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UV", "PYENV", "PYTHON", "VIRTUAL_ENV", "CONDA"))
    }
    env["PATH"] = path
    env.update(extra)
    return env


def _dev(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(project / "dev"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=_TIMEOUT,
    )


def _system_python_path() -> str:
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} does not exist: this is not a Debian-like machine")
    if shutil.which("uv", path=_SYSTEM_DIRS) is not None:
        skip_or_fail(f"uv is installed in {_SYSTEM_DIRS}, so a machine without uv cannot be had")
    found = shutil.which("python3", path=_SYSTEM_DIRS)
    assert found is not None
    assert Path(found).resolve() == SYSTEM_PYTHON.resolve()
    return _SYSTEM_DIRS


def _system_site_packages() -> dict[str, list[str]]:
    # Every folder the system Python installs into, with what it holds.
    code = "import json, site; print(json.dumps([*site.getsitepackages(), site.getusersitepackages()]))"
    folders = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {
        folder: sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        for folder in sorted(set(json.loads(folders)))
    }


def test_without_uv_dev_installs_it_privately_with_the_system_python(project: Path) -> None:
    path = _system_python_path()
    before = _system_site_packages()

    first = _dev(project, _env(path), "uv", "--version")

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"uv {UV_VERSION}")
    assert f"Installing uv {UV_VERSION} into .cache/uv-{UV_VERSION}" in first.stderr
    venv = project / ".cache" / f"uv-{UV_VERSION}"
    assert (venv / "bin" / "uv").is_file()
    config = (venv / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", config, re.MULTILINE), config
    # Nothing went into the system Python, and it still has no uv of its own.
    assert _system_site_packages() == before
    probe = subprocess.run([str(SYSTEM_PYTHON), "-m", "uv", "--version"], capture_output=True)
    assert probe.returncode != 0

    again = _dev(project, _env(path), "uv", "--version")
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert "Installing" not in again.stderr


def test_without_the_venv_module_dev_says_what_to_install(project: Path, tmp_path: Path) -> None:
    path = _system_python_path()
    # Debian ships ensurepip in python3-venv; a module that fails to import stands in
    # for a machine without that package.
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('ensurepip is not installed')\n")

    result = _dev(project, _env(path, PYTHONPATH=str(shadow.parent)), "uv", "--version")

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "install python3-venv (apt-get install python3-venv)" in lines[0]
    assert not (project / ".cache").exists()


def test_a_uv_on_path_is_used_as_it_is(project: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "uv"
    fake.write_text('#!/bin/sh\necho "uv on PATH: $*"\n')
    fake.chmod(0o755)

    result = _dev(project, _env(f"{bin_dir}:{_SYSTEM_DIRS}"), "uv", "--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "uv on PATH: --version\n"
    assert not (project / ".cache").exists()
