"""Real servers for the integration tests, each started by a session fixture.

Load this module as a pytest plugin (``pytest_plugins = ["polyserve_testkit.servers"]``, as the
root ``conftest.py`` does). A server starts the first time a test asks for its fixture, on a free
port bound to 127.0.0.1 only, keeps its data in memory or in a temporary directory, and is
stopped with its whole process group at the end of the session. Each fixture yields a frozen dataclass with what a client needs.

Fixtures::

    redis_server       RedisServer       redis-server
    dynamodb_local     DynamoDBServer    AWS DynamoDB Local (Java)
    dynalite           DynamoDBServer    dynalite (Node.js)
    dynamodb_server    DynamoDBServer    each of the two above in turn
    azurite            AzuriteServer     Azurite blob, queue and table services (Node.js)
    firestore_emulator GcloudEmulator    the gcloud Firestore emulator
    pubsub_emulator    GcloudEmulator    the gcloud Pub/Sub emulator
    moto_server        MotoServer        moto's server: SQS, SNS, EventBridge, S3 (moto[server])
    storage_emulator   StorageEmulator   gcp-storage-emulator: the Cloud Storage JSON API
    node_binary        str               Node.js 20 or later: .cache/node's, else the one on PATH
    node_modules_dir   Path              tests/node/node_modules
    pyodide_dir        Path              the pyodide npm package
    miniflare_dir      Path              the miniflare npm package (Cloudflare's workerd inside)

``.ci/install-servers`` installs everything except the gcloud emulators. A server that is not
installed skips the tests that need it, but fails them when ``CI=true``, so CI cannot pass
without running them. The gcloud emulators are optional everywhere: they are used when
``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST`` point at a running one, or when ``gcloud``
has the emulator components, and are skipped otherwise.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "DYNAMODB_IMPLEMENTATIONS",
    "AzuriteServer",
    "DynamoDBServer",
    "GcloudEmulator",
    "RedisServer",
    "StorageEmulator",
    "skip_or_fail",
]

HOST = "127.0.0.1"
# The repository this package is installed from (editable, like every workspace member):
# the servers .ci/install-servers installs live in it.
ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
# Where .ci/install-servers unpacks DynamoDB Local: the jar, with its native SQLite
# libraries in DynamoDBLocal_lib/ beside it.
DYNAMODB_LOCAL_DIR = ROOT / ".cache" / "dynamodb-local"
# Where .ci/install-servers puts a Node.js of its own when the one on PATH is too old.
NODE_DIR = ROOT / ".cache" / "node"
NODE_MAJOR = 20
DYNAMODB_IMPLEMENTATIONS = ("dynamodb-local", "dynalite")
INSTALL_HINT = "run .ci/install-servers"

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0
_POLL_INTERVAL = 0.05
_OUTPUT_TAIL = 4000

# Azurite's development account: the name and key are public and fixed.
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

GCLOUD_PROJECT = "polyserve-test"

# DynamoDB Local has no option to choose the interface and listens on all of them. This
# launcher builds the server from the usual command line, points its Jetty connector at the
# loopback address, then starts it. Java runs it straight from source.
_DYNAMODB_LOCAL_LAUNCHER = """\
import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        for (Connector connector : ((Server) field.get(proxy)).getConnectors()) {
            connector.setHost("127.0.0.1");
        }
        proxy.start();
    }
}
"""


@dataclass(frozen=True, slots=True)
class RedisServer:
    """A running redis-server, empty at start and never saved to disk."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The URL of database 0, for ``redis.Redis.from_url``."""
        return f"redis://{self.host}:{self.port}/0"


@dataclass(frozen=True, slots=True)
class DynamoDBServer:
    """A running DynamoDB implementation, named ``dynamodb-local`` or ``dynalite``.

    Both accept any credentials. DynamoDB Local keeps separate tables per access key and
    region, so clients should use the ones given here.
    """

    name: str
    host: str
    port: int
    region: str = "us-east-1"
    access_key_id: str = "test"
    secret_access_key: str = "test"

    @property
    def endpoint_url(self) -> str:
        """The HTTP endpoint, for boto3's ``endpoint_url``."""
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class AzuriteServer:
    """A running Azurite with blob, queue and table services, each on its own port.

    The endpoints are path-style (``http://127.0.0.1:<port>/devstoreaccount1``), as Azurite
    serves its development account.
    """

    host: str
    blob_port: int
    queue_port: int
    table_port: int
    account_name: str = AZURITE_ACCOUNT_NAME
    account_key: str = AZURITE_ACCOUNT_KEY

    @property
    def blob_endpoint(self) -> str:
        """The blob service URL of the development account."""
        return f"http://{self.host}:{self.blob_port}/{self.account_name}"

    @property
    def queue_endpoint(self) -> str:
        """The queue service URL of the development account."""
        return f"http://{self.host}:{self.queue_port}/{self.account_name}"

    @property
    def table_endpoint(self) -> str:
        """The table service URL of the development account."""
        return f"http://{self.host}:{self.table_port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        """A storage connection string naming all three endpoints."""
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={self.account_name};"
            f"AccountKey={self.account_key};"
            f"BlobEndpoint={self.blob_endpoint};"
            f"QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )


@dataclass(frozen=True, slots=True)
class GcloudEmulator:
    """A running gcloud emulator and the environment variable its client libraries read.

    The Google client libraries connect to ``address`` without credentials when
    ``env_var`` (``FIRESTORE_EMULATOR_HOST`` or ``PUBSUB_EMULATOR_HOST``) is set to it. The
    emulators accept any project ID.
    """

    env_var: str
    host: str
    port: int
    project_id: str = GCLOUD_PROJECT

    @property
    def address(self) -> str:
        """``host:port``, the value for ``env_var``."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL of the emulator's REST API."""
        return f"http://{self.address}"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test because something it needs is missing, or fail it when ``CI=true``.

    CI installs every server, so a missing one there is a broken setup, not a reason to run
    fewer tests.
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _require_executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not on PATH; {INSTALL_HINT}")
    return path


def _require_node_package(name: str) -> Path:
    path = NODE_MODULES / name
    if not (path / "package.json").is_file():
        skip_or_fail(f"the npm package {name} is not installed in tests/node; {INSTALL_HINT}")
    return path


def free_ports(count: int) -> list[int]:
    """Ports the kernel has just given out on the loopback interface, all different."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def answers_http(port: int) -> bool:
    # http.client rather than urllib, which would send the request to a proxy named in the
    # environment.
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _output(log: Path) -> str:
    text = log.read_bytes().decode(errors="replace")
    if len(text) > _OUTPUT_TAIL:
        text = "...\n" + text[-_OUTPUT_TAIL:]
    return text or "(no output)"


def _group_exists(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reap the leader, which would otherwise still count as a member
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the process and everything it started: SIGTERM, then SIGKILL for what lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while _group_exists(process) and time.monotonic() < deadline:
        time.sleep(_POLL_INTERVAL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def running(
    name: str, command: list[str], ready: Callable[[], bool], workdir: Path
) -> Iterator[None]:
    """Run ``command`` in ``workdir`` until the block ends, once ``ready()`` is true.

    stdout and stderr go to ``workdir/output.log``. If the process exits or is not ready
    within the start timeout, the test fails with that output.
    """
    log = workdir / "output.log"
    with log.open("wb") as out:
        # A new session gives the server its own process group, so stopping it also stops
        # whatever it started (the gcloud scripts run java as a child).
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not ready():
            if process.poll() is not None:
                pytest.fail(
                    f"{name} exited with code {process.returncode}:\n{_output(log)}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{name} did not answer within {_START_TIMEOUT:.0f} s:\n{_output(log)}",
                    pytrace=False,
                )
            time.sleep(_POLL_INTERVAL)
        yield
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def node_binary() -> str:
    """The node that .ci/install-servers installed the npm packages with.

    Its own, in ``.cache/node``, when it put one there (the node on PATH was older than
    20, as Debian 12's is); otherwise the node on PATH, which must be 20 or later.
    """
    private = NODE_DIR / "bin" / "node"
    node = str(private) if private.is_file() else shutil.which("node")
    if node is None:
        skip_or_fail(f"node is not on PATH; {INSTALL_HINT}")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    major = version.removeprefix("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR:
        skip_or_fail(
            f"{node} is Node.js {version or '(unknown)'}; the test servers need "
            f"{NODE_MAJOR} or later; {INSTALL_HINT}"
        )
    return node


@pytest.fixture(scope="session")
def node_modules_dir() -> Path:
    """``tests/node/node_modules``, where ``.ci/install-servers`` puts the npm packages."""
    if not NODE_MODULES.is_dir():
        skip_or_fail(f"tests/node/node_modules is missing; {INSTALL_HINT}")
    return NODE_MODULES


@pytest.fixture(scope="session")
def pyodide_dir() -> Path:
    """The installed ``pyodide`` npm package: ``pyodide.mjs``, the wasm, the stdlib zip."""
    return _require_node_package("pyodide")


@pytest.fixture(scope="session")
def miniflare_dir() -> Path:
    """The installed ``miniflare`` npm package (with its ``workerd`` binary)."""
    return _require_node_package("miniflare")


@dataclass(frozen=True)
class MotoServer:
    """moto's standalone server; ``client_options`` are what ``boto3.client`` needs."""

    endpoint_url: str
    region: str = "us-east-1"
    account: str = "123456789012"  # moto's default account

    @property
    def client_options(self) -> dict[str, str]:
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's server (the ``moto[server]`` dev dependency), on a free loopback port."""
    executable = _require_executable("moto_server")
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("moto")
    command = [executable, "-H", HOST, "-p", str(port)]
    with running("moto_server", command, lambda: answers_http(port), workdir):
        yield MotoServer(f"http://{HOST}:{port}")


@dataclass(frozen=True)
class StorageEmulator:
    """gcp-storage-emulator (a dev dependency): Cloud Storage's JSON API, in memory."""

    endpoint_url: str
    project: str = GCLOUD_PROJECT


@pytest.fixture(scope="session")
def storage_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageEmulator]:
    """gcp-storage-emulator on a free loopback port, keeping its objects in memory."""
    executable = _require_executable("gcp-storage-emulator")
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("gcs")
    command = [executable, "start", "--host", HOST, "--port", str(port), "--in-memory", "-q"]
    with running("gcp-storage-emulator", command, lambda: answers_http(port), workdir):
        yield StorageEmulator(f"http://{HOST}:{port}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that keeps everything in memory."""
    executable = _require_executable("redis-server")
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("redis")
    command = [
        executable,
        "--bind", HOST,
        "--port", str(port),
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    with running("redis-server", command, lambda: _answers_ping(port), workdir):
        yield RedisServer(HOST, port)


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBServer]:
    """AWS DynamoDB Local, in memory, listening on the loopback interface only."""
    jar = DYNAMODB_LOCAL_DIR / "DynamoDBLocal.jar"
    if not jar.is_file():
        skip_or_fail(f"DynamoDB Local is not installed in .cache/dynamodb-local; {INSTALL_HINT}")
    java = _require_executable("java")
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("dynamodb-local")
    launcher = workdir / "LoopbackDynamoDBLocal.java"
    launcher.write_text(_DYNAMODB_LOCAL_LAUNCHER)
    command = [
        java,
        f"-Djava.library.path={DYNAMODB_LOCAL_DIR / 'DynamoDBLocal_lib'}",
        "-cp", str(jar),
        str(launcher),
        "-inMemory",
        "-port", str(port),
    ]  # fmt: skip
    with running("DynamoDB Local", command, lambda: answers_http(port), workdir):
        yield DynamoDBServer("dynamodb-local", HOST, port)


@pytest.fixture(scope="session")
def dynalite(
    tmp_path_factory: pytest.TempPathFactory, node_binary: str
) -> Iterator[DynamoDBServer]:
    """dynalite, in memory, with tables that become ACTIVE at once as in DynamoDB Local."""
    package = _require_node_package("dynalite")
    node = node_binary
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("dynalite")
    command = [
        node,
        str(package / "cli.js"),
        "--host", HOST,
        "--port", str(port),
        "--createTableMs", "0",
        "--deleteTableMs", "0",
        "--updateTableMs", "0",
    ]  # fmt: skip
    with running("dynalite", command, lambda: answers_http(port), workdir):
        yield DynamoDBServer("dynalite", HOST, port)


@pytest.fixture(scope="session", params=DYNAMODB_IMPLEMENTATIONS)
def dynamodb_server(request: pytest.FixtureRequest) -> DynamoDBServer:
    """Each DynamoDB implementation in turn: tests using it run once against each.

    Limit a test to one with ``@pytest.mark.parametrize("dynamodb_server", ["dynalite"],
    indirect=True)``.
    """
    server = request.getfixturevalue(str(request.param).replace("-", "_"))
    assert isinstance(server, DynamoDBServer)
    return server


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory, node_binary: str) -> Iterator[AzuriteServer]:
    """Azurite's blob, queue and table services, in memory, with telemetry off."""
    package = _require_node_package("azurite")
    node = node_binary
    blob_port, queue_port, table_port = free_ports(3)
    workdir = tmp_path_factory.mktemp("azurite")
    command = [
        node,
        str(package / "dist" / "src" / "azurite.js"),
        "--silent",
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        # Azurite otherwise reports usage to Microsoft.
        "--disableTelemetry",
        "--blobHost", HOST,
        "--blobPort", str(blob_port),
        "--queueHost", HOST,
        "--queuePort", str(queue_port),
        "--tableHost", HOST,
        "--tablePort", str(table_port),
    ]  # fmt: skip
    ports = (blob_port, queue_port, table_port)
    with running("Azurite", command, lambda: all(map(answers_http, ports)), workdir):
        yield AzuriteServer(HOST, blob_port, queue_port, table_port)


def _gcloud_emulator(
    env_var: str,
    component: str,
    launcher: tuple[str, ...],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GcloudEmulator]:
    """Use the emulator ``env_var`` points at, or start the SDK's ``component``.

    ``launcher`` is the component's start script, relative to its directory, and the
    arguments that come before ``--host`` and ``--port``.
    """
    address = os.environ.get(env_var)
    if address:
        host, _, given_port = address.rpartition(":")
        yield GcloudEmulator(env_var, host, int(given_port))
        return
    gcloud = shutil.which("gcloud")
    # The emulators are not installed by .ci/install-servers, so CI skips them too.
    if gcloud is None:
        pytest.skip(f"gcloud is not on PATH and {env_var} is not set")
    # The SDK's own launcher script, rather than `gcloud beta emulators ... start`, which
    # would add the gcloud CLI's start-up time and its update check.
    sdk = Path(gcloud).resolve().parent.parent
    script, *arguments = launcher
    executable = sdk / "platform" / component / script
    if not executable.is_file():
        pytest.skip(
            f"the gcloud component {component} is not installed "
            f"(gcloud components install beta {component}) and {env_var} is not set"
        )
    if shutil.which("java") is None:
        pytest.skip(f"java is not on PATH, which the gcloud {component} needs")
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp(component)
    command = [str(executable), *arguments, f"--host={HOST}", f"--port={port}"]
    with running(component, command, lambda: answers_http(port), workdir):
        yield GcloudEmulator(env_var, HOST, port)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcloudEmulator]:
    """The gcloud Firestore emulator (native mode); skipped when it is not available."""
    yield from _gcloud_emulator(
        "FIRESTORE_EMULATOR_HOST",
        "cloud-firestore-emulator",
        ("cloud_firestore_emulator", "start"),
        tmp_path_factory,
    )


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcloudEmulator]:
    """The gcloud Pub/Sub emulator; skipped when it is not available."""
    yield from _gcloud_emulator(
        "PUBSUB_EMULATOR_HOST", "pubsub-emulator", ("bin/cloud-pubsub-emulator",), tmp_path_factory
    )
