"""Development sessions: ``nox -s tests``, ``nox -s adapter``, ``lint``, ``typecheck``, ``bench``, ``docs``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]

TEST_DEPS = ["pytest>=8.2", "hypothesis>=6.100"]
# Per adapter: its extras, and what its tests drive it with besides pytest and hypothesis.
ADAPTERS = {
    "aws": ("[dynamodb]", ["awslambdaric>=3", "cfn-lint>=1.0"]),
    "azure": ("[tables]", []),
    "gcp": ("[firestore]", ["httpx>=0.27"]),
    "cloudflare": ("", []),
}


# The Python versions the packages support (their classifiers, and ./dev, list the same).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(venv_backend="none")
@nox.parametrize("version", PYTHONS)
def tests(session: nox.Session, version: str) -> None:
    """The whole suite against every package, on one supported Python version.

    ``./dev test --python X.Y`` does the work, so nox and ``./dev test`` find the same
    interpreters and use the same environments (``.venv-X.Y``).
    """
    session.run("./dev", "test", "--python", version, *session.posargs, external=True)


@nox.session
@nox.parametrize("provider", list(ADAPTERS))
def adapter(session: nox.Session, provider: str) -> None:
    """One adapter's tests in an environment holding only core and that adapter.

    Proves that no adapter leans on another's dependencies. The shared test support
    (``testkit``) is the one other thing installed: the root ``tests`` directory is not used.
    Core's ``schema-registry`` extra is there for the tests decoding Kafka values.
    """
    extras, test_deps = ADAPTERS[provider]
    session.install(
        "-e",
        ".[pydantic,schema-registry]",
        "-e",
        f"adapters/{provider}{extras}",
        "-e",
        "testkit",
        *TEST_DEPS,
        *test_deps,
    )
    session.run("pytest", f"adapters/{provider}", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.run_install("uv", "sync", "--all-packages", "--locked",
                        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})  # fmt: skip
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Per-invocation cost and cold start against hand-written handlers and Powertools.

    Reports only: a case over its budget never fails the session.

    AWS Lambda Powertools, the toolkit compared against, is installed here only. The
    idempotency benchmark runs too when ``redis-server`` is installed: it gets a server
    of its own on a free loopback port for the length of the run.
    """
    session.run_install("uv", "sync", "--all-packages", "--locked",
                        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})  # fmt: skip
    session.install("aws-lambda-powertools[parser]>=3.37,<4")
    if shutil.which("redis-server") is None:
        session.warn("redis-server is not installed: the idempotency benchmark is skipped")
        session.run("python", "-m", "benchmarks.run", *session.posargs)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        session.run(
            "python", "-m", "benchmarks.run", "--redis-url", f"redis://127.0.0.1:{port}",
            *session.posargs,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (strict: broken links and references fail)."""
    session.run_install("uv", "sync", "--all-packages", "--locked", "--group", "docs",
                        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})  # fmt: skip
    session.run("mkdocs", "build", "--strict")
