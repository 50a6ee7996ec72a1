"""Helpers for the AWS adapter tests: a Lambda context, the samples and a recording app."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyserve import App, HttpRequest, StorageAction, Trigger

EVENTS = Path(__file__).parent / "events"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


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


@dataclass
class Recorder:
    """An app that records every request and event it receives and answers ``ok``."""

    app: App
    seen: list[Any] = field(default_factory=list)

    @property
    def last(self) -> Any:
        assert self.seen, "the app received nothing"
        return self.seen[-1]


def load(name: str) -> dict[str, Any]:
    """One of this adapter's samples in ``tests/events`` (a fresh copy each time)."""
    data = json.loads((EVENTS / name).read_text())
    assert isinstance(data, dict)
    return data


def recording_app() -> Recorder:
    """An app with a catch-all route and a ``*`` registration for every typed trigger."""
    app = App("recorder")
    recorder = Recorder(app)

    def on_request(request: HttpRequest) -> str:
        recorder.seen.append(request)
        return "ok"

    def on_event(event: object) -> None:
        recorder.seen.append(event)

    app.add_route("/{rest:path}", on_request, ALL_METHODS)
    for trigger in Trigger:
        if trigger is Trigger.NATIVE:  # the escape hatch would take every unknown event
            continue
        options: dict[str, Any] = {}
        if trigger is Trigger.STORAGE:
            options["actions"] = frozenset(a.value for a in StorageAction)
        app.register(trigger, "*", on_event, **options)
    return recorder
