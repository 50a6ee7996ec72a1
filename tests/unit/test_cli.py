"""The ``polyserve`` command: its version, and one line for every target it cannot serve.

Each case runs twice: through ``main()`` in this process, and through the installed
``polyserve`` command in a subprocess, as a user runs it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import polyserve
from polyserve._cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator

COMMAND = Path(sys.executable).parent / "polyserve"

MODULES = {
    "good.py": 'from polyserve import App\n\napp = App("good")\n',
    "broken.py": "import not_an_installed_package_xyz\n\napp = None\n",
    "failing.py": 'raise RuntimeError("DATABASE_URL is\\nnot set")\n',
    "syntax.py": "def (:\n",
    "notapp.py": (
        "from polyserve import App\n\n"
        'api = App("api")\n'
        "settings = {'debug': True}\n\n\n"
        "def handler(event, context):\n    return None\n\n\n"
        "class Thing:\n    pass\n"
    ),
    "pkg/__init__.py": "",
    "pkg/inner.py": "import pkg.missing_sibling\n",
}

# target, the line printed, whether the hint to rerun with --traceback follows
CASES = [
    pytest.param(
        "good", "expected 'module:attribute' (petstore.app:app), got 'good'", False, id="no-colon"
    ),
    pytest.param(
        "good:", "expected 'module:attribute' (petstore.app:app), got 'good:'", False, id="no-attr"
    ),
    pytest.param(
        "nosuchmodule:app",
        "no module named 'nosuchmodule' (looked in --app-dir {app_dir!r} and the Python path)",
        False,
        id="missing-module",
    ),
    pytest.param(
        "pkg.nosuch:app",
        "no module named 'pkg.nosuch' (looked in --app-dir {app_dir!r} and the Python path)",
        False,
        id="missing-submodule",
    ),
    pytest.param(
        "good.py:app",
        "no module named 'good.py' (looked in --app-dir {app_dir!r} and the Python path);"
        " give a dotted module name (petstore.app), not a file path",
        False,
        id="file-path",
    ),
    pytest.param(
        "broken:app",
        "importing 'broken' failed: ModuleNotFoundError: No module named 'not_an_installed_package_xyz'",
        True,
        id="import-error-inside",
    ),
    pytest.param(
        "pkg.inner:app",
        "importing 'pkg.inner' failed: ModuleNotFoundError: No module named 'pkg.missing_sibling'",
        True,
        id="missing-sibling-inside",
    ),
    pytest.param(
        "failing:app",
        "importing 'failing' failed: RuntimeError: DATABASE_URL is not set",
        True,
        id="exception-inside",
    ),
    pytest.param(
        "syntax:app",
        "importing 'syntax' failed: SyntaxError: invalid syntax (syntax.py, line 1)",
        True,
        id="syntax-error",
    ),
    pytest.param(
        "good:ap", "module 'good' has no attribute 'ap' (its Apps: app)", False, id="missing-attr"
    ),
    pytest.param(
        "notapp:settings",
        "'notapp:settings' is a dict, not a polyserve App or an ASGI application",
        False,
        id="not-callable",
    ),
    pytest.param(
        "notapp:handler",
        "'notapp:handler' is a function, not a polyserve App or an ASGI application",
        False,
        id="not-asgi-signature",
    ),
    pytest.param(
        "notapp:Thing",
        "'notapp:Thing' is a class, not a polyserve App or an ASGI application",
        False,
        id="class",
    ),
]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    for name, text in MODULES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.fixture
def isolated_imports(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``main()`` puts --app-dir on sys.path and imports from it: undo both afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").is_relative_to(app_dir):
            del sys.modules[name]


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


@pytest.mark.usefixtures("isolated_imports")
@pytest.mark.parametrize(("target", "line", "has_cause"), CASES)
def test_bad_target_through_main(
    app_dir: Path, capsys: pytest.CaptureFixture[str], target: str, line: str, has_cause: bool
) -> None:
    status = main(["serve", target, "--app-dir", str(app_dir)])
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert err[0] == "polyserve: error: " + line.format(app_dir=str(app_dir))
    assert err[1:] == (["polyserve: run with --traceback to see where"] if has_cause else [])


@pytest.mark.parametrize(("target", "line", "has_cause"), CASES)
def test_bad_target_through_the_command(
    app_dir: Path, target: str, line: str, has_cause: bool
) -> None:
    done = _run("serve", target, "--app-dir", str(app_dir))
    assert done.returncode == 2
    assert done.stdout == ""
    err = done.stderr.splitlines()
    assert err[0] == "polyserve: error: " + line.format(app_dir=str(app_dir))
    assert err[1:] == (["polyserve: run with --traceback to see where"] if has_cause else [])
    assert "Traceback" not in done.stderr


def test_traceback_flag_shows_where_the_module_failed(app_dir: Path) -> None:
    done = _run("serve", "failing:app", "--app-dir", str(app_dir), "--traceback")
    assert done.returncode == 2
    first, *rest = done.stderr.splitlines()
    assert (
        first
        == "polyserve: error: importing 'failing' failed: RuntimeError: DATABASE_URL is not set"
    )
    # The traceback starts in the user's module: the command's own frames are left out.
    assert rest[:3] == [
        "Traceback (most recent call last):",
        f'  File "{app_dir / "failing.py"}", line 1, in <module>',
        '    raise RuntimeError("DATABASE_URL is\\nnot set")',
    ]
    assert rest[-2:] == ["RuntimeError: DATABASE_URL is", "not set"]


@pytest.mark.usefixtures("isolated_imports")
def test_traceback_flag_through_main(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "broken:app", "--app-dir", str(app_dir), "--traceback"]) == 2
    err = capsys.readouterr().err
    assert "import not_an_installed_package_xyz" in err
    assert err.rstrip().endswith(
        "ModuleNotFoundError: No module named 'not_an_installed_package_xyz'"
    )
    assert "_cli.py" not in err


def test_the_target_is_relative_to_the_working_directory_by_default(app_dir: Path) -> None:
    done = _run("serve", "nosuchmodule:app", cwd=app_dir)
    assert done.returncode == 2
    assert "looked in --app-dir '.'" in done.stderr


def test_an_unknown_log_level_is_a_usage_error() -> None:
    done = _run("serve", "good:app", "--log-level", "loud")
    assert done.returncode == 2
    assert "invalid choice: 'loud'" in done.stderr


@pytest.mark.usefixtures("isolated_imports")
def test_without_uvicorn_the_command_says_what_to_install(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes ``import uvicorn`` fail
    assert main(["serve", "good:app", "--app-dir", str(app_dir)]) == 2
    err = capsys.readouterr().err
    # The distribution's name is the installer's business: only the extra is checked.
    assert err.startswith(
        "polyserve: error: polyserve serve needs the 'uvicorn' package: pip install '"
    )
    assert err.endswith("[serve]'\n")
    assert err.count("\n") == 1
