"""The invocation context: who is running, for how long, and a structured logger."""

from __future__ import annotations

import gc
import os
import time

from polyserve._json import log_line

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping
    from typing import Any

    from polyserve.identity import Principal
    from polyserve.tracing import TraceContext

__all__ = ["Context", "ContextLogger"]

_cold_start = True


def _end_of_init() -> None:
    """Move what the process built before its first invocation out of the collector's way.

    Modules, classes, the app and its clients live as long as the process. Left in
    the collector's oldest generation, they are walked by every full collection, and
    the first one falls in whichever early invocation crosses the collector's
    threshold: with FastAPI and pydantic loaded, a walk of some 20 ms, often inside
    the first request. ``gc.freeze`` moves them to the permanent generation, which
    no collection walks; objects freed by reference counting are still freed.
    ``POLYSERVE_GC_FREEZE=0`` turns this off.
    """
    if os.environ.get("POLYSERVE_GC_FREEZE", "1") != "0":
        gc.freeze()


_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR"}

_default_logger: logging.Logger | None = None


def _load_default_logger() -> logging.Logger:
    # The "polyserve" logger, looked up once: logging costs cold-start milliseconds to
    # import, and getLogger takes a lock on every call.
    global _default_logger
    import logging

    _default_logger = logging.getLogger("polyserve")
    return _default_logger


class ContextLogger:
    """A logger that writes one JSON object per line, stamped with the invocation's fields.

    ``ctx.logger.info("order stored", order_id=7)`` logs::

        {"level": "INFO", "message": "order stored", "order_id": 7, "provider": "aws",
         "invocation_id": "...", "function_name": "...", "is_cold_start": false}

    Records go through the standard ``logging`` logger named ``polyserve`` (or the
    one given), so the platform's log capture sees them; the library adds no handler.
    ``polyserve serve`` installs one for local runs, printing the same lines to stderr.

    An exception is logged in one of two ways. ``error(..., exc=exc)`` names it and
    where it was raised, in the same one line: ``error_type``, ``error_message`` (its
    ``str()``), and the innermost frame of its traceback as ``error_file``,
    ``error_line`` and ``error_function``; the full ``traceback`` is added only while
    the logger is enabled for DEBUG (``logging.getLogger("polyserve").setLevel("DEBUG")``,
    or a function log level of DEBUG on Lambda). polyserve logs each failed batch
    record this way: formatting a traceback costs far more than handling a record.
    ``exception(..., exc)`` always adds the full traceback; polyserve uses it for
    failures that end an invocation, such as an HTTP 500.
    """

    __slots__ = ("_fields", "_logger")

    def __init__(self, fields: Mapping[str, Any], logger: logging.Logger | None = None) -> None:
        self._fields = dict(fields)
        self._logger = logger or _default_logger or _load_default_logger()

    def bind(self, **fields: Any) -> ContextLogger:
        """A logger that also stamps ``fields`` on every line."""
        return ContextLogger({**self._fields, **fields}, self._logger)

    def is_enabled_for(self, level: int) -> bool:
        """Whether a record of ``level`` (``logging.ERROR`` is 40) would be written.

        Lets a caller skip building an expensive message that nobody would see.
        """
        return self._logger.isEnabledFor(level)

    def _log(
        self,
        level: int,
        message: str,
        exc: BaseException | None,
        fields: Any,
        with_traceback: bool = False,
    ) -> None:
        if not self._logger.isEnabledFor(level):
            return
        record: dict[str, Any] = {"level": _LEVELS.get(level, str(level)), "message": message}
        record.update(fields)
        record.update(self._fields)
        if exc is not None:
            _describe(exc, record)
            if with_traceback or self._logger.isEnabledFor(10):
                import traceback

                record["traceback"] = "".join(
                    traceback.format_exception(type(exc), exc, exc.__traceback__)
                )
        self._logger.log(level, log_line(record))

    def debug(self, message: str, **fields: Any) -> None:
        self._log(10, message, None, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._log(20, message, None, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log(30, message, None, fields)

    def error(self, message: str, *, exc: BaseException | None = None, **fields: Any) -> None:
        """Log ``message`` at ERROR; with ``exc``, also its type, message and raising frame.

        The traceback is added only while the logger is enabled for DEBUG.
        """
        self._log(40, message, exc, fields)

    def exception(self, message: str, exc: BaseException, **fields: Any) -> None:
        """Log ``message`` at ERROR with ``exc`` described as ``error`` does, and its full traceback."""
        self._log(40, message, exc, fields, with_traceback=True)


def _describe(exc: BaseException, record: dict[str, Any]) -> None:
    # What went wrong and where, without formatting the traceback: its type, its
    # message, and the innermost frame (where it was raised).
    record["error_type"] = type(exc).__name__
    try:
        record["error_message"] = _message(exc)
    except Exception:  # a broken __str__ must not lose the record's log line
        record["error_message"] = "<str() failed>"
    tb = exc.__traceback__
    if tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        code = tb.tb_frame.f_code
        record["error_file"] = code.co_filename
        record["error_line"] = tb.tb_lineno
        record["error_function"] = code.co_name


def _message(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__name__ != "ValidationError" or not cls.__module__.startswith("pydantic"):
        return str(exc)
    # pydantic's own message repeats every invalid input value, which is payload
    # content: the fields and what is wrong with them say enough. (pydantic is not
    # imported here: its error is recognised by name.)
    error: Any = exc
    problems = []
    for e in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join([str(part) for part in e["loc"]]) or "<root>"
        problems.append(f"{where}: {e['msg']}")
    return f"validation failed for {error.title}: {'; '.join(problems)}"


class Context:
    """What a handler knows about its invocation.

    ``deadline`` is a wall-clock time (seconds since the epoch, as ``time.time()``)
    after which the platform stops the invocation, or ``None`` where the provider
    gives none. ``is_cold_start`` is true for the first context a process creates,
    unless given; creating that one also freezes the heap built during init, so
    that no later garbage collection walks it (``gc.freeze``; set
    ``POLYSERVE_GC_FREEZE=0`` to turn it off). ``raw`` is the provider's own
    context object; ``clock`` is the time source, replaceable in tests. Contexts
    compare equal when their provider, invocation id, function name, deadline and
    cold-start flag are equal.

    For runtimes that tell the time left rather than the deadline, give
    ``deadline_from`` instead of ``deadline``: a function of ``raw`` that returns
    the deadline, called the first time ``deadline`` is read (an HTTP handler
    seldom reads it). A plain function rather than a closure, so that nothing is
    built for it per invocation.

    ``principal`` is the caller, when the platform or a verifier identified one (see
    ``polyserve.identity``). Adapters give a reader with ``principal_from``, so that
    a request whose handler never asks who is calling pays nothing for decoding it.
    """

    __slots__ = (
        "_deadline",
        "_deadline_from",
        "_logger",
        "_principal",
        "_principal_from",
        "_trace",
        "_trace_from",
        "clock",
        "function_name",
        "invocation_id",
        "is_cold_start",
        "log_fields",
        "provider",
        "raw",
        "route",
    )

    def __init__(
        self,
        provider: str,
        invocation_id: str = "",
        function_name: str = "",
        deadline: float | None = None,
        is_cold_start: bool | None = None,
        raw: Any = None,
        clock: Callable[[], float] = time.time,
        deadline_from: Callable[[Any], float | None] | None = None,
        trace: TraceContext | None = None,
        log_fields: Callable[[Context], Mapping[str, Any]] | None = None,
    ) -> None:
        self.provider = provider
        self.invocation_id = invocation_id
        self.function_name = function_name
        self._deadline = deadline
        self._deadline_from = deadline_from
        if is_cold_start is None:
            # The first context a process creates is the cold start, and the end of the
            # process's init; every later one is warm.
            global _cold_start
            is_cold_start, _cold_start = _cold_start, False
            if is_cold_start:
                _end_of_init()
        self.is_cold_start = is_cold_start
        self.raw = raw
        self.clock = clock
        self._trace = trace
        self._trace_from: tuple[Callable[[Any], TraceContext | None], Any] | None = None
        self.log_fields = log_fields
        #: The template of the HTTP route that matched (``/pets/{pet_id:int}``), once routed.
        self.route: str | None = None
        self._logger: ContextLogger | None = None
        self._principal: Principal | None = None
        self._principal_from: tuple[Callable[[Any], Principal | None], Any] | None = None

    def _key(self) -> tuple[str, str, str, float | None, bool]:
        return (
            self.provider,
            self.invocation_id,
            self.function_name,
            self.deadline,
            self.is_cold_start,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Context)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable (object's hash is typed non-optional)

    def __repr__(self) -> str:
        return (
            f"Context(provider={self.provider!r}, invocation_id={self.invocation_id!r}, "
            f"function_name={self.function_name!r}, deadline={self.deadline!r}, "
            f"is_cold_start={self.is_cold_start!r})"
        )

    @property
    def deadline(self) -> float | None:
        """When the platform stops the invocation (``time.time()`` seconds), or ``None``."""
        deadline_from = self._deadline_from
        if deadline_from is not None:
            self._deadline, self._deadline_from = deadline_from(self.raw), None
        return self._deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self._deadline, self._deadline_from = value, None

    @property
    def principal(self) -> Principal | None:
        """The caller, as the platform or a verifier identified it, or ``None``.

        Worked out on first read when an adapter gave a reader (``principal_from``).
        Set it to record a caller identified some other way; ``polyserve.auth``
        verifiers set it when they accept a request.
        """
        pending = self._principal_from
        if pending is not None:
            self._principal_from = None
            reader, source = pending
            self._principal = reader(source)
        return self._principal

    @principal.setter
    def principal(self, value: Principal | None) -> None:
        self._principal, self._principal_from = value, None

    def principal_from(self, reader: Callable[[Any], Principal | None], source: Any) -> None:
        """Make ``principal`` be ``reader(source)``, called when ``principal`` is first read.

        For adapters: ``source`` is the native event or the request headers, and
        ``reader`` must return ``None`` rather than raise for anything it cannot read.
        """
        self._principal, self._principal_from = None, (reader, source)

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

    def logs_at(self, level: int) -> bool:
        """Whether ``logger`` writes records of ``level`` (``logging.ERROR`` is 40).

        Answered without building the logger, for callers that log only sometimes.
        """
        if self._logger is not None:
            return self._logger.is_enabled_for(level)
        return (_default_logger or _load_default_logger()).isEnabledFor(level)

    @property
    def trace(self) -> TraceContext | None:
        """The distributed trace this invocation continues, or ``None`` (``polyserve.tracing``).

        Worked out on first read when an adapter gave a reader (``trace_from``).
        """
        pending = self._trace_from
        if pending is not None:
            self._trace_from = None
            reader, source = pending
            self._trace = reader(source)
        return self._trace

    @trace.setter
    def trace(self, value: TraceContext | None) -> None:
        self._trace, self._trace_from = value, None

    def trace_from(self, reader: Callable[[Any], TraceContext | None], source: Any) -> None:
        """Make ``trace`` be ``reader(source)``, called when ``trace`` is first read.

        For adapters: a request whose handler never logs or traces pays nothing for
        parsing trace headers. ``reader`` must return ``None`` rather than raise.
        """
        self._trace, self._trace_from = None, (reader, source)

    @property
    def trace_id(self) -> str | None:
        """The id of the distributed trace this invocation continues, or ``None``.

        W3C form (32 hex digits) where the caller sent a W3C-compatible trace
        (``traceparent``, X-Ray, Google's trace header, Application Insights); see
        ``polyserve.tracing``.
        """
        trace = self.trace
        return None if trace is None else trace.trace_id

    def for_record(self, trace_of: Callable[[Any], TraceContext | None], record: Any) -> Context:
        """This context for one record of a batch, continuing the trace the record carries.

        ``trace_of(record)`` is called when the child's ``trace`` is first read (so a
        handler that neither logs nor traces pays nothing for it); when it finds
        none, the child continues this context's trace. Everything else is shared.
        """
        child = Context.__new__(Context)
        child.provider = self.provider
        child.invocation_id = self.invocation_id
        child.function_name = self.function_name
        child._deadline = self._deadline
        child._deadline_from = self._deadline_from
        child.is_cold_start = self.is_cold_start
        child.raw = self.raw
        child.clock = self.clock
        child._principal = self._principal
        child._principal_from = self._principal_from
        child.log_fields = self.log_fields
        child.route = self.route
        child._logger = None
        child._trace = None
        child._trace_from = (_RecordTrace(trace_of, self), record)
        return child

    @property
    def logger(self) -> ContextLogger:
        """A JSON logger stamped with provider, invocation id, function name and cold start.

        When the invocation continues a trace, every line also carries ``trace_id``,
        and the fields the provider's log viewer correlates on (the adapter's
        ``log_fields``: X-Ray's ``xray_trace_id``, Cloud Logging's
        ``logging.googleapis.com/trace``, ...).
        """
        if self._logger is None:
            fields: dict[str, Any] = {
                "provider": self.provider,
                "invocation_id": self.invocation_id,
                "function_name": self.function_name,
                "is_cold_start": self.is_cold_start,
            }
            trace = self.trace
            if trace is not None:
                fields["trace_id"] = trace.trace_id
            if self.log_fields is not None:
                fields.update(self.log_fields(self))
            self._logger = ContextLogger(fields)
        return self._logger

    @classmethod
    def with_timeout(cls, provider: str, timeout: float | None, **fields: Any) -> Context:
        """A context whose deadline is ``timeout`` seconds from now (``None``: no deadline)."""
        start = time.time()
        return cls(provider, deadline=None if timeout is None else start + timeout, **fields)


class _RecordTrace:
    # The trace of one batch record: its own, else the batch's (see Context.for_record).
    __slots__ = ("_parent", "_trace_of")

    def __init__(self, trace_of: Callable[[Any], TraceContext | None], parent: Context) -> None:
        self._trace_of = trace_of
        self._parent = parent

    def __call__(self, record: Any) -> TraceContext | None:
        found = self._trace_of(record)
        return found if found is not None else self._parent.trace
