"""Helpers for the AWS adapter tests: a Lambda context, the samples and a recording app."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"


@dataclass
class FakeLambdaContext:
    """What awslambdaric passes as the context, reduced to what polyserve reads."""

    aws_request_id: str = "8f5a1c3e-0b2d-4e6f-9a7b-1c2d3e4f5a6b"
    function_name: str = "pets-fn"
    remaining_ms: int = 30_000
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:210987654321:function:pets-fn"

    def __post_init__(self) -> None:
        # As the runtime does: a fixed deadline, and the time left counting down to it.
        self._deadline_ms = time.time() * 1000 + self.remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def load(name: str) -> dict[str, Any]:
    """One of this adapter's samples in ``tests/events`` (a fresh copy each time)."""
    data = json.loads((EVENTS / name).read_text())
    assert isinstance(data, dict)
    return data
