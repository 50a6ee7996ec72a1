"""The gcp Context: invocation id, function name and deadline."""

from __future__ import annotations

import time

import pytest

from polyserve import App
from polyserve_gcp._context import make_context, timeout_seconds


def test_context_carries_provider_id_name_and_raw() -> None:
    raw = object()
    ctx = make_context(App("pets"), "evt-1", 30, raw)
    assert ctx.provider == "gcp"
    assert ctx.invocation_id == "evt-1"
    assert ctx.function_name == "pets"
    assert ctx.raw is raw


def test_deadline_is_now_plus_the_configured_timeout() -> None:
    before = time.time()
    ctx = make_context(App("pets"), "", 45, None)
    after = time.time()
    assert ctx.deadline is not None
    assert before + 45 <= ctx.deadline <= after + 45


def test_platform_timeout_wins_over_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTION_TIMEOUT_SEC", "540")
    ctx = make_context(App("pets"), "", 60, None)
    assert ctx.deadline is not None
    assert 530 < ctx.deadline - time.time() <= 540


@pytest.mark.parametrize("value", ["", "soon", "0", "-5"])
def test_unusable_platform_timeout_falls_back(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FUNCTION_TIMEOUT_SEC", value)
    assert timeout_seconds(12.5) == 12.5


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"K_SERVICE": "pets-gen2", "FUNCTION_TARGET": "handle", "FUNCTION_NAME": "old"},
            "pets-gen2",
        ),
        ({"FUNCTION_TARGET": "handle", "FUNCTION_NAME": "old"}, "handle"),
        ({"FUNCTION_NAME": "old"}, "old"),
        ({}, "pets"),
    ],
)
def test_function_name_comes_from_the_platform(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert make_context(App("pets"), "", 60, None).function_name == expected
