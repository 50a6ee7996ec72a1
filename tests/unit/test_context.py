"""Context: the deadline, worked out once and only when asked for."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from polyserve import Context

if TYPE_CHECKING:
    import pytest


def test_deadline_from_is_called_once_and_only_when_read() -> None:
    calls: list[object] = []
    raw = object()

    def deadline(given: object) -> float:
        calls.append(given)
        return 1000.0

    ctx = Context("test", raw=raw, deadline_from=deadline, clock=lambda: 990.0)
    assert calls == []
    assert ctx.remaining_time() == 10.0
    assert ctx.deadline == 1000.0
    assert calls == [raw]  # called once, with the raw context
    ctx.deadline = 2000.0
    assert ctx.deadline == 2000.0
    assert calls == [raw]


def test_a_context_without_deadline_has_all_the_time() -> None:
    ctx = Context("test")
    assert ctx.deadline is None
    assert ctx.remaining_time() is None
    assert ctx.has_time_for(10**6)
    assert Context("test", deadline=5.0, clock=lambda: 9.0).remaining_time() == 0.0


def test_log_lines_carry_any_text_from_an_event_as_ascii_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hostile = "G\ud800T\x00\r\n" + "x" * 100_000
    with caplog.at_level(logging.INFO, logger="polyserve"):
        Context("test", invocation_id=hostile).logger.info(hostile, path=hostile, nested=[hostile])
        try:
            raise ValueError(hostile)
        except ValueError as exc:
            Context("test").logger.exception("failed", exc, detail=hostile)
    for record in caplog.records:
        line = record.getMessage()
        assert line.isascii()
        assert "\n" not in line  # one line per record, whatever the text
        logged = json.loads(line)
        assert hostile in logged.values() or hostile in logged["traceback"]
