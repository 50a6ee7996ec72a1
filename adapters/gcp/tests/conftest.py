"""Fixtures for the GCP adapter tests."""

from __future__ import annotations

import pytest

from polyserve_testkit.recorder import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder.catch_all()


@pytest.fixture(autouse=True)
def _no_platform_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The adapter reads these per invocation; a developer's shell must not change results.
    for variable in (
        "FUNCTION_TIMEOUT_SEC", "K_SERVICE", "FUNCTION_TARGET", "FUNCTION_NAME",
        "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "GCLOUD_PROJECT",
    ):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
