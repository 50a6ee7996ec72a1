"""Fixtures shared by every test directory; loaded from the root conftest."""

from __future__ import annotations

import importlib.util

# Real-server fixtures; present once tests/support/servers.py exists.
pytest_plugins = (
    ["tests.support.servers"] if importlib.util.find_spec("tests.support.servers") else []
)
