"""Test-suite wide options and fixtures (real servers live in polyserve_testkit.servers)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hypothesis import settings

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["polyserve_testkit.servers"]

# Timing-based deadlines make property tests flaky on a loaded 2-core machine; CI
# also runs them derandomised so a red build always reproduces.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--events-dir",
        action="append",
        default=[],
        help="a folder of native event samples (JSON) for the conformance tests; repeatable",
    )
