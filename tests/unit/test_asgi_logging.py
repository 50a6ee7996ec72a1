"""The local server's logging: ``polyserve.asgi.log_config`` and ``JsonLineFormatter``."""

from __future__ import annotations

import json
import logging
import logging.config
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from polyserve import Context
from polyserve.asgi import JsonLineFormatter, log_config

if TYPE_CHECKING:
    from collections.abc import Iterator


def _record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("polyserve", logging.WARNING, __file__, 1, message, args, exc_info)


def test_context_logger_lines_pass_through_unchanged() -> None:
    line = '{"level": "INFO", "message": "m", "invocation_id": "i"}'
    assert JsonLineFormatter().format(_record(line)) == line


@pytest.mark.parametrize(
    "message", ["plain %s", "{not json %s", '{"a": 1} %s', "[1, %s]"], ids=["text", "brace", "tail", "array"]
)  # fmt: skip
def test_other_records_become_one_json_object(message: str) -> None:
    formatted = JsonLineFormatter().format(_record(message, "x"))
    assert json.loads(formatted) == {
        "level": "WARNING",
        "message": message % "x",
        "logger": "polyserve",
    }


def test_a_record_with_a_traceback_keeps_it_in_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError as exc:
        formatted = JsonLineFormatter().format(_record('{"level": "ERROR"}', exc=exc))
    assert "\n" not in formatted
    line = json.loads(formatted)
    assert line["message"] == '{"level": "ERROR"}'
    assert line["traceback"].endswith("ValueError: bad\nvalue")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("polyserve")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.usefixtures("restore_logging")
def test_log_config_writes_context_lines_from_the_level_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Only the polyserve logger: the uvicorn loggers of this process stay as they are.
    config = log_config("warning")
    logging.config.dictConfig({**config, "loggers": {"polyserve": config["loggers"]["polyserve"]}})
    ctx = Context("local", invocation_id="inv-1", function_name="f", is_cold_start=False)
    ctx.logger.info("hidden")
    ctx.logger.warning("shown", n=1)
    err = capsys.readouterr().err
    assert [json.loads(line) for line in err.splitlines()] == [
        {
            "level": "WARNING",
            "message": "shown",
            "n": 1,
            "provider": "local",
            "invocation_id": "inv-1",
            "function_name": "f",
            "is_cold_start": False,
        }
    ]


def test_log_config_keeps_uvicorn_loggers_and_does_not_propagate() -> None:
    config = log_config()
    assert {"uvicorn", "uvicorn.access"} <= set(config["loggers"])
    assert config["loggers"]["polyserve"] == {
        "handlers": ["polyserve"],
        "level": "INFO",
        "propagate": False,
    }
    assert config["handlers"]["polyserve"]["stream"] == "ext://sys.stderr"


def test_log_config_rejects_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        log_config("loud")


def test_importing_polyserve_adds_no_handler() -> None:
    # A fresh interpreter: the test process itself may have configured logging.
    code = (
        "import logging, polyserve, polyserve.asgi, polyserve.context\n"
        "from polyserve import App, Context\n"
        "Context('x').logger.info('m')\n"
        "print(len(logging.getLogger('polyserve').handlers), len(logging.getLogger().handlers))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "0 0\n"
    assert done.stderr == ""
