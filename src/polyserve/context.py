"""The invocation context: who is running, for how long, and a structured logger."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["Context", "ContextLogger"]

_cold_start = True


def _take_cold_start() -> bool:
    # The first context a process creates is the cold start; every later one is warm.
    global _cold_start
    was, _cold_start = _cold_start, False
    return was


_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR"}


class ContextLogger:
    """A logger that writes one JSON object per line, stamped with the invocation's fields.

    ``ctx.logger.info("order stored", order_id=7)`` logs::

        {"level": "INFO", "message": "order stored", "order_id": 7, "provider": "aws",
         "invocation_id": "...", "function_name": "...", "is_cold_start": false}

    Records go through the standard ``logging`` logger named ``polyserve`` (or the
    one given), so the platform's log capture sees them; polyserve adds no handler.
    """

    __slots__ = ("_fields", "_logger")

    def __init__(self, fields: Mapping[str, Any], logger: logging.Logger | None = None) -> None:
        import logging  # not at import time: logging costs cold-start milliseconds

        self._fields = dict(fields)
        self._logger = logger or logging.getLogger("polyserve")

    def bind(self, **fields: Any) -> ContextLogger:
        """A logger that also stamps ``fields`` on every line."""
        return ContextLogger({**self._fields, **fields}, self._logger)

    def _log(self, level: int, message: str, exc: BaseException | None, fields: Any) -> None:
        if not self._logger.isEnabledFor(level):
            return
        record: dict[str, Any] = {"level": _LEVELS.get(level, str(level)), "message": message}
        record.update(fields)
        record.update(self._fields)
        if exc is not None:
            import traceback

            record["error_type"] = type(exc).__name__
            record["traceback"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            )
        import json  # loaded by then: every response or event body has used it

        self._logger.log(level, json.dumps(record, default=str))

    def debug(self, message: str, **fields: Any) -> None:
        self._log(10, message, None, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._log(20, message, None, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log(30, message, None, fields)

    def error(self, message: str, *, exc: BaseException | None = None, **fields: Any) -> None:
        self._log(40, message, exc, fields)

    def exception(self, message: str, exc: BaseException, **fields: Any) -> None:
        """Log ``exc`` with its traceback (the traceback goes to the log only)."""
        self._log(40, message, exc, fields)


@dataclass(slots=True)
class Context:
    """What a handler knows about its invocation.

    ``deadline`` is a wall-clock time (seconds since the epoch, as ``time.time()``)
    after which the platform stops the invocation, or ``None`` where the provider
    gives none. ``raw`` is the provider's own context object.
    """

    provider: str
    invocation_id: str = ""
    function_name: str = ""
    deadline: float | None = None
    is_cold_start: bool = field(default_factory=_take_cold_start)
    raw: Any = field(default=None, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    _logger: ContextLogger | None = field(default=None, init=False, repr=False, compare=False)

    def remaining_time(self) -> float | None:
        """Seconds left before the deadline (never negative), or ``None`` if unknown."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock())

    def has_time_for(self, seconds: float) -> bool:
        """Whether more than ``seconds`` remain before the deadline (always, with no deadline).

        For handlers that loop over work themselves: stop and leave the rest for
        redelivery when ``not ctx.has_time_for(1.0)``. ``has_time_for(0)`` is
        ``False`` once the deadline has passed.
        """
        remaining = self.remaining_time()
        return remaining is None or remaining > seconds

    @property
    def logger(self) -> ContextLogger:
        """A JSON logger stamped with provider, invocation id, function name and cold start."""
        if self._logger is None:
            self._logger = ContextLogger(
                {
                    "provider": self.provider,
                    "invocation_id": self.invocation_id,
                    "function_name": self.function_name,
                    "is_cold_start": self.is_cold_start,
                }
            )
        return self._logger

    @classmethod
    def with_timeout(cls, provider: str, timeout: float | None, **fields: Any) -> Context:
        """A context whose deadline is ``timeout`` seconds from now (``None``: no deadline)."""
        start = time.time()
        return cls(provider, deadline=None if timeout is None else start + timeout, **fields)
