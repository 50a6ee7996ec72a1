"""Fixtures for the AWS adapter tests."""

from __future__ import annotations

import pytest
from adapters.aws.tests.support import FakeLambdaContext, Recorder, recording_app


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def recorder() -> Recorder:
    return recording_app()
