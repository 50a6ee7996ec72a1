"""Fixtures for the Azure adapter tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from adapters.azure.tests.support import functions, recording_app

import polyserve_azure

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from polyserve_testkit.recorder import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return recording_app()


@pytest.fixture
def fns(recorder: Recorder) -> dict[str, Function]:
    """The functions generated for the recording app, by name."""
    return functions(polyserve_azure.function_app(recorder.app))
