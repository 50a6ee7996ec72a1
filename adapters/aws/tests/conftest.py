"""Fixtures for the AWS adapter tests."""

from __future__ import annotations

import pytest
from adapters.aws.tests.support import FakeLambdaContext

from polyserve_testkit.recorder import Recorder


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder.catch_all()
