"""Test-suite wide options and fixtures (real servers live in tests/support/servers.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["tests.support.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--events-dir",
        action="append",
        default=[],
        help="a folder of native event samples (JSON) for the conformance tests; repeatable",
    )
