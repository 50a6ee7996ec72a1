"""The ``polyserve`` command, through ``main()`` and as the installed command."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import polyserve
from polyserve._cli import main

COMMAND = Path(sys.executable).parent / "polyserve"


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert COMMAND.exists(), f"the polyserve command is not installed at {COMMAND}"
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def _core_distribution() -> importlib.metadata.Distribution:
    # Found by the command it installs, which does not depend on the distribution's name.
    for dist in importlib.metadata.distributions():
        if any(ep.value == "polyserve._cli:main" for ep in dist.entry_points):
            return dist
    raise AssertionError("no installed distribution provides the polyserve command")


def test_the_installed_version_is_polyserve_version() -> None:
    assert _core_distribution().version == polyserve.__version__


@pytest.mark.parametrize("adapter", ["polyserve-aws", "polyserve-azure", "polyserve-gcp", "polyserve-cloudflare"])  # fmt: skip
def test_adapters_are_released_with_the_same_version(adapter: str) -> None:
    assert importlib.metadata.version(adapter) == polyserve.__version__
    module = importlib.import_module(adapter.replace("-", "_"))
    assert getattr(module, "__version__", polyserve.__version__) == polyserve.__version__


def test_version_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"polyserve {polyserve.__version__}\n"


def test_version_through_the_command() -> None:
    done = _run("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"polyserve {polyserve.__version__}\n",
        "",
    )
