"""The five distributions as users get them: built into wheels, installed with pip, imported.

Every install runs ``pip install --no-index --find-links`` over our own wheels and a
wheelhouse of third-party wheels (the versions ``uv.lock`` pins), so a requirement
on a name we do not publish cannot be met from the package index: it fails the
install. The core is ``polyserve-core`` (the name ``polyserve`` on the index is
another project's), and each adapter must resolve to it.

The wheelhouse is downloaded once per lockfile and Python version into
``.cache/wheelhouse/`` and reused offline after that. The wheels are built once per
``./dev test`` run and shared by its Python versions (see the ``dist`` fixture).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from polyserve_testkit.servers import skip_or_fail

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("aws", "azure", "gcp", "cloudflare")
OURS = {"polyserve-core", *(f"polyserve-{a}" for a in ADAPTERS)}
# The test support shared by the suites: a workspace member, so built too, never published.
TESTKIT = "polyserve-testkit"
VERSION = "0.1.0"
# Beside the locked dependencies of the five packages: what builds them, and a
# pydantic the core does not support, for the version check.
BUILD_REQUIREMENT = "hatchling>=1.24"
OLD_PYDANTIC = "pydantic>=1.10,<2"
_TIMEOUT = 600
# What the wheels are built from (globs under the project root).
WHEEL_SOURCES = (
    "pyproject.toml", "README.md", "LICENSE*", "src",
    "adapters/*/pyproject.toml", "adapters/*/README.md", "adapters/*/LICENSE*", "adapters/*/src",
    "testkit/pyproject.toml", "testkit/README.md", "testkit/LICENSE*", "testkit/src",
)  # fmt: skip


def _run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=_TIMEOUT, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _base_python() -> Path:
    # The interpreter this venv was made from: fresh venvs are made from it, not from
    # a venv (whose site-packages they must not see).
    return Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        skip_or_fail("uv is needed to build the wheels; run the suite with ./dev test")
    return uv


@pytest.fixture(scope="module")
def pip(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A pip of its own, which installs into other venvs with ``--python``."""
    venv = tmp_path_factory.mktemp("pip")
    _run(_base_python(), "-m", "venv", venv)
    return [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]


@pytest.fixture(scope="module")
def wheelhouse(pip: list[str]) -> Path:
    """Third-party wheels for this Python: the lock's pins, hatchling and a pydantic 1."""
    locked = _run(
        _uv(), "export", "--frozen", "--all-packages", "--no-default-groups",
        "--extra", "pydantic", "--no-emit-workspace", "--no-hashes", "--no-header",
        "--no-annotate", cwd=ROOT,
    ).stdout  # fmt: skip
    key = hashlib.sha256(
        "\n".join(
            [locked, BUILD_REQUIREMENT, OLD_PYDANTIC, sys.version, platform.machine()]
        ).encode()
    ).hexdigest()[:16]
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}-{key}"
    house = ROOT / ".cache" / "wheelhouse" / tag
    if (house / ".complete").exists():
        return house
    work = house.with_name(f"{tag}.{os.getpid()}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "locked.txt").write_text(locked)
    download = [*pip, "download", "--quiet", "--only-binary=:all:", "--dest", str(work)]
    for args in (["-r", "locked.txt"], [BUILD_REQUIREMENT], ["--no-deps", OLD_PYDANTIC]):
        result = subprocess.run(
            [*download, *args], cwd=work, capture_output=True, text=True, timeout=_TIMEOUT
        )
        if result.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            skip_or_fail(f"cannot fill the wheelhouse from the package index:\n{result.stderr}")
    (work / ".complete").touch()
    try:
        work.rename(house)
    except OSError:  # another run filled it meanwhile
        shutil.rmtree(work, ignore_errors=True)
    return house


def _sources_key() -> str:
    """A hash of what the five wheels are built from: the projects' files and sources."""
    digest = hashlib.sha256()
    for pattern in WHEEL_SOURCES:
        for top in sorted(ROOT.glob(pattern)):
            files = [top] if top.is_file() else sorted(top.rglob("*"))
            for file in files:
                if file.is_file() and "__pycache__" not in file.parts:
                    digest.update(f"{file.relative_to(ROOT)}\0".encode())
                    digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def dist(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five wheels (and the unpublished test kit), built from this checkout (offline:
    hatchling is in the wheelhouse).

    They are pure Python, the same for every Python version, so the runs of one
    ``./dev test`` share them: the first to need them builds them into the folder that
    ``DEV_TEST_RUN_DIR`` names (which lives as long as that command), under the hash of
    their sources, and the others use those while the sources are unchanged.
    """
    shared = os.environ.get("DEV_TEST_RUN_DIR")
    built = Path(shared) / f"wheels-{_sources_key()}" if shared else None
    if built is not None and (built / ".complete").exists():
        return built
    out = tmp_path_factory.mktemp("dist")
    _run(
        _uv(), "build", "--all-packages", "--wheel", "--out-dir", out, "--no-index",
        "--find-links", wheelhouse, "--no-build-logs", cwd=ROOT,
    )  # fmt: skip
    if built is not None:
        work = built.with_name(f"{built.name}.{os.getpid()}.partial")
        shutil.copytree(out, work)
        (work / ".complete").touch()
        try:
            work.rename(built)
        except OSError:  # another run shared its build meanwhile
            shutil.rmtree(work, ignore_errors=True)
    return out


class Venv:
    """A fresh venv with our wheels installed from the wheelhouse, never from the index.

    pip runs ``--isolated``: no find-links or index from the environment or the user's
    configuration can offer it anything else.
    """

    def __init__(self, path: Path, pip: list[str], find_links: list[Path]) -> None:
        self.path = path
        self.python = path / "bin" / "python"
        _run(_base_python(), "-m", "venv", "--without-pip", path)
        self._pip = pip
        self._links = [arg for link in find_links for arg in ("--find-links", str(link))]

    def install(self, *requirements: str) -> None:
        _run(
            *self._pip, "--isolated", "--python", self.python, "install", "--quiet", "--no-index",
            *self._links, *requirements,
        )  # fmt: skip

    def run(self, code: str) -> Any:
        """Run ``code`` in the venv (isolated from this process's paths); it prints JSON."""
        result = _run(self.python, "-I", "-c", textwrap.dedent(code), cwd=self.path)
        return json.loads(result.stdout)

    def distributions(self) -> dict[str, dict[str, Any]]:
        """Installed distributions by normalised name: version and requirements."""
        found: dict[str, dict[str, Any]] = self.run(_LIST_DISTRIBUTIONS)
        return found


_LIST_DISTRIBUTIONS = """
import importlib.metadata, json, re
found = {}
for d in importlib.metadata.distributions():
    name = re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
    found[name] = {"version": d.version, "requires": d.requires or []}
print(json.dumps(found))
"""

# An app with a handler that needs no validation and one whose payload does.
_APP = """
import dataclasses, json
from polyserve import App, Context, Message, MissingDependencyError, Trigger

app = App("probe")

@dataclasses.dataclass
class Order:
    sku: str

@app.queue("raw")
def raw(message: Message) -> str:
    return message.body.decode()

@app.queue("orders")
def orders(order: Order) -> str:
    return order.sku

ctx = Context("probe", invocation_id="1", function_name="probe")
message = Message(id="1", body=b'{"sku": "A1"}')
out = {"raw": app.handle_event(Trigger.QUEUE, "raw", message, ctx)}
try:
    out["orders"] = app.handle_event(Trigger.QUEUE, "orders", message, ctx)
except MissingDependencyError as exc:
    out["orders_error"] = str(exc)
"""


@pytest.fixture
def venv(tmp_path: Path, pip: list[str], wheelhouse: Path, dist: Path) -> Venv:
    return Venv(tmp_path / "venv", pip, [dist, wheelhouse])


def _normalised(*requirements: str) -> set[str]:
    return {str(Requirement(r)) for r in requirements}


def _requirements(metadata: Any) -> set[str]:
    return _normalised(*metadata.get_all("Requires-Dist"))


def _metadata(wheel: Path) -> Any:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(zf.read(name).decode())


def test_the_wheels_are_ours_and_the_adapters_require_the_core(dist: Path) -> None:
    wheels = {w.name for w in dist.glob("*.whl")}
    expected = OURS | {TESTKIT}
    assert wheels == {f"{name.replace('-', '_')}-{VERSION}-py3-none-any.whl" for name in expected}
    testkit = _metadata(dist / f"polyserve_testkit-{VERSION}-py3-none-any.whl")
    # The classifier package indexes refuse an upload for.
    assert "Private :: Do Not Upload" in testkit.get_all("Classifier")
    core = _metadata(dist / f"polyserve_core-{VERSION}-py3-none-any.whl")
    assert core["Name"] == "polyserve-core"
    assert _requirements(core) == _normalised(
        'opentelemetry-api>=1.20; extra == "otel"',
        'fastavro>=1.9; extra == "avro"',
        'jsonschema>=4.18; extra == "jsonschema"',
        'protobuf>=4.25; extra == "protobuf"',
        # The one extra for all three schema types (the build flattens its self-reference).
        'fastavro>=1.9; extra == "schema-registry"',
        'jsonschema>=4.18; extra == "schema-registry"',
        'protobuf>=4.25; extra == "schema-registry"',
        'pydantic>=2.6,<3; extra == "pydantic"',
        'pyjwt[crypto]>=2.8; extra == "jwt"',
        'redis>=5; extra == "redis"',
        'swagger-ui-bundle-v2>=5.17; extra == "docs"',
        "typing-extensions>=4.8",
        'uvicorn>=0.30; extra == "serve"',
    )
    for adapter in ADAPTERS:
        meta = _metadata(dist / f"polyserve_{adapter}-{VERSION}-py3-none-any.whl")
        assert meta["Name"] == f"polyserve-{adapter}"
        requires = _requirements(meta)
        assert _normalised("polyserve-core~=0.1.0") <= requires
        # Nothing else of ours, no bare `polyserve` (another project's) and no pydantic.
        names = {Requirement(r).name for r in requires}
        assert not {"polyserve", "pydantic"} & names
        assert names & OURS == {"polyserve-core"}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_each_adapter_installs_alone_and_works_without_pydantic(venv: Venv, adapter: str) -> None:
    venv.install(f"polyserve-{adapter}")

    installed = venv.distributions()
    ours = {name for name in installed if name.startswith("polyserve")}
    assert ours == {"polyserve-core", f"polyserve-{adapter}"}
    assert all(installed[name]["version"] == VERSION for name in ours)
    assert "polyserve-core~=0.1.0" in _normalised(*installed[f"polyserve-{adapter}"]["requires"])
    # Neither the adapter nor anything it depends on brings pydantic along.
    assert "pydantic" not in installed

    out = venv.run(_APP + f"import polyserve_{adapter}\nprint(json.dumps(out))\n")
    assert out["raw"] == '{"sku": "A1"}'
    assert out["orders_error"] == (
        "validating Order needs 'pydantic>=2.6,<3': pip install 'polyserve-core[pydantic]'"
    )


def test_all_five_install_together_with_the_pydantic_extra(venv: Venv) -> None:
    venv.install(*(f"polyserve-{a}" for a in ADAPTERS), "polyserve-core[pydantic]")

    installed = venv.distributions()
    assert {name for name in installed if name.startswith("polyserve")} == OURS
    major = int(installed["pydantic"]["version"].split(".")[0])
    assert major == 2
    imports = "\n".join(f"import polyserve_{a}" for a in ADAPTERS)
    out = venv.run(_APP + imports + "\nprint(json.dumps(out))\n")
    assert out == {"raw": '{"sku": "A1"}', "orders": "A1"}


def test_pydantic_1_is_refused_with_the_supported_range(venv: Venv) -> None:
    venv.install("polyserve-core", OLD_PYDANTIC)

    version = venv.distributions()["pydantic"]["version"]
    assert version.startswith("1.")
    out = venv.run(_APP + "print(json.dumps(out))\n")
    assert out["orders_error"] == (
        f"validating Order needs 'pydantic>=2.6,<3' (found pydantic {version}): "
        "pip install 'polyserve-core[pydantic]'"
    )


def _tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_a_deployment_package_without_models_leaves_pydantic_out(
    tmp_path: Path, pip: list[str], wheelhouse: Path, dist: Path
) -> None:
    # What a Lambda zip holds: `pip install --target`, as the AWS docs build one.
    sizes = {}
    for label, extra in (("without", []), ("with", ["polyserve-core[pydantic]"])):
        target = tmp_path / label
        _run(
            *pip, "--isolated", "install", "--quiet", "--no-index", "--find-links", dist, "--find-links",
            wheelhouse, "--no-compile", "--target", target, "polyserve-aws", *extra,
        )  # fmt: skip
        sizes[label] = _tree_size(target)
        has_pydantic = (target / "pydantic").is_dir()
        assert has_pydantic == bool(extra)
    print(
        f"\ndeployment package, polyserve-aws: {sizes['without'] / 1e6:.2f} MB without "
        f"pydantic, {sizes['with'] / 1e6:.2f} MB with it"
    )
    assert sizes["without"] < 1_500_000
    assert sizes["with"] > 4 * sizes["without"]
