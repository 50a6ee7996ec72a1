"""Context: the deadline, worked out once and only when asked for; the JSON logger."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from polyserve import Context


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


# -- the logger ------------------------------------------------------------------


def _lookup(pet_id: int) -> None:
    raise LookupError(f"no pet {pet_id}")


def _caught() -> Exception:
    try:
        _lookup(7)
    except LookupError as exc:
        return exc
    raise AssertionError("not raised")


def _logged(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    [record] = caplog.records
    logged: dict[str, Any] = json.loads(record.getMessage())
    return logged


def test_error_names_the_exception_and_the_frame_that_raised_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    Context("test", invocation_id="inv-1").logger.error("lookup failed", exc=_caught(), pet=7)
    logged = _logged(caplog)
    assert (logged["level"], logged["message"], logged["pet"]) == ("ERROR", "lookup failed", 7)
    assert (logged["error_type"], logged["error_message"]) == ("LookupError", "no pet 7")
    assert (logged["error_file"], logged["error_line"], logged["error_function"]) == (
        __file__, _lookup.__code__.co_firstlineno + 1, "_lookup",
    )  # fmt: skip
    assert "traceback" not in logged


def test_error_adds_the_traceback_when_the_logger_is_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="polyserve")
    Context("test").logger.error("lookup failed", exc=_caught())
    traceback = _logged(caplog)["traceback"]
    assert "in _caught" in traceback
    assert "in _lookup" in traceback
    assert traceback.rstrip().endswith("LookupError: no pet 7")


def test_exception_always_adds_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    Context("test").logger.exception("lookup failed", _caught())
    logged = _logged(caplog)
    assert logged["error_function"] == "_lookup"
    assert "in _lookup" in logged["traceback"]


def test_an_exception_never_raised_has_no_frame(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    Context("test").logger.error("gave up", exc=TimeoutError("store too slow"))
    logged = _logged(caplog)
    assert (logged["error_type"], logged["error_message"]) == ("TimeoutError", "store too slow")
    assert not {"error_file", "error_line", "error_function"} & logged.keys()


class _Card(BaseModel):
    number: int
    holder: str


def test_a_pydantic_error_is_logged_without_the_input_it_repeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    with pytest.raises(ValidationError) as info:
        _Card.model_validate({"number": "4111-secret-1111", "holder": ["Ada"]})
    assert "4111-secret-1111" in str(info.value)  # what pydantic's own message holds
    Context("test").logger.error("card rejected", exc=info.value)
    logged = _logged(caplog)
    assert logged["error_type"] == "ValidationError"
    assert logged["error_message"].startswith("validation failed for _Card: number: ")
    assert "holder: Input should be a valid string" in logged["error_message"]
    assert "4111-secret-1111" not in caplog.text
    assert "Ada" not in caplog.text


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_an_exception_whose_str_fails_is_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="polyserve")
    Context("test").logger.error("odd failure", exc=_Unprintable())
    logged = _logged(caplog)
    assert (logged["error_type"], logged["error_message"]) == ("_Unprintable", "<str() failed>")
