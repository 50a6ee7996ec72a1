"""A handler run by AWS's runtime interface client against the test Runtime API."""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from polyserve_testkit.lambda_runtime import LambdaRuntime, LambdaRuntimeError

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parent / "runtime_sample"


def require_module(name: str) -> None:
    """Skip when ``name`` cannot be imported, or fail under ``CI=true`` where it must be."""
    if importlib.util.find_spec(name) is not None:
        return
    reason = f"{name} is not installed; install the test dependency group (uv sync)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def runtime() -> Iterator[LambdaRuntime]:
    require_module("awslambdaric")
    with LambdaRuntime("echo_handler.handler", task_root=SAMPLE, function_name="echo") as rt:
        yield rt


def test_event_round_trips(runtime: LambdaRuntime) -> None:
    event = {"name": "polyserve", "items": [1, 2.5, None, True], "nested": {"a": "é"}}

    result = runtime.invoke(event)

    assert result.ok
    assert result.error_type is None
    assert result.payload["echo"] == event
    assert result.payload["function_name"] == "echo"


def test_request_id_and_deadline_reach_the_context(runtime: LambdaRuntime) -> None:
    deadline = now_ms() + 3_000
    before = now_ms()

    result = runtime.invoke({}, deadline_ms=deadline)

    after = math.ceil(time.time() * 1000)
    assert result.payload["request_id"] == result.request_id
    assert deadline - after <= result.payload["remaining_ms"] <= deadline - before


def test_default_deadline_follows_the_timeout(runtime: LambdaRuntime) -> None:
    result = runtime.invoke({}, timeout=2.0)

    assert 0 < result.payload["remaining_ms"] <= 2_000


def test_raising_handler_reports_its_error(runtime: LambdaRuntime) -> None:
    result = runtime.invoke({"fail": True})

    assert not result.ok
    assert result.error_type == "HandlerFailedError"
    assert result.payload["errorMessage"] == "asked to fail"
    assert result.payload["requestId"] == result.request_id


def test_one_process_serves_invocations_in_sequence(runtime: LambdaRuntime) -> None:
    results = [runtime.invoke({"n": n, "fail": n == 2}) for n in range(5)]

    assert [result.ok for result in results] == [True, True, False, True, True]
    assert [result.payload["echo"]["n"] for result in results if result.ok] == [0, 1, 3, 4]
    assert len({result.request_id for result in results}) == 5


def test_missing_handler_fails_on_start() -> None:
    require_module("awslambdaric")
    rt = LambdaRuntime("echo_handler.missing", task_root=SAMPLE)

    with pytest.raises(LambdaRuntimeError, match=r"Runtime\.HandlerNotFound"), rt:
        pass

    assert rt.init_error is not None
    assert rt.init_error.error_type == "Runtime.HandlerNotFound"


def test_dead_process_fails_invoke_at_once() -> None:
    require_module("awslambdaric")
    with LambdaRuntime("echo_handler.handler", task_root=SAMPLE) as rt:
        os.kill(rt.pid, signal.SIGKILL)
        started = time.monotonic()

        with pytest.raises(LambdaRuntimeError, match="exited with status"):
            rt.invoke({}, timeout=30.0)

        assert time.monotonic() - started < 5.0
