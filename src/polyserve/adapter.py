"""What a provider adapter needs from polyserve, and an app does not.

An adapter translates a provider's native events into polyserve's typed ones and
its results back. Each kind of native event is a *source*: an object (usually a
module) with three functions of the same signatures everywhere::

    matches(raw) -> bool                          does this source recognise raw?
    to_event(raw, context, names) -> Request      what to run: an HttpRequest, an
                                                  Event (one handler call), or a Batch
    to_native(outcome, raw, context) -> native    the outcome in the provider's format

``run(app, source, raw, context, names)`` (or ``run_async``) does the rest: it
calls the app's entry point that fits what ``to_event`` returned and hands the
outcome to ``to_native``. An HTTP event that cannot be read gets a 400 problem
response, never an exception.

The rest of this module is shared by the adapters so that they read provider
fields alike: typed field readers that raise ``MalformedEventError`` with a clear
message, timestamps, base64, JSON, request paths and response bodies.
"""

from __future__ import annotations

import binascii

from polyserve.errors import EventError, MalformedEventError, PolyserveError
from polyserve.events._body import parse_json
from polyserve.routing import HTTP_METHODS, Trigger

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Protocol

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve.events.http import HttpRequest, HttpResponse
    from polyserve.idempotency.store import LazyClient
    from polyserve.tracing import TraceContext

    class Source(Protocol):
        """One family of native events (see the module docstring)."""

        def matches(self, raw: Any) -> bool: ...

        def to_event(
            self, raw: Any, context: Context, names: Mapping[str, str]
        ) -> HttpRequest | Event | Batch: ...

        def to_native(self, outcome: Any, raw: Any, context: Context) -> Any: ...

        @property
        def is_http(self) -> bool:
            """True for HTTP sources: an event they cannot read gets a 400 response."""


__all__ = [
    "HTTP_METHODS",
    "Batch",
    "Event",
    "LazyClient",
    "Source",
    "as_object",
    "decode_base64",
    "error_response",
    "from_epoch",
    "from_epoch_ms",
    "from_rfc3339",
    "json_object",
    "malformed",
    "optional_text",
    "parse_json",
    "problem",
    "response_body",
    "run",
    "run_async",
    "run_native",
    "run_native_async",
    "text",
    "translating",
]


class Event:
    """One event for one handler: its trigger, the registration name and the typed event."""

    __slots__ = ("event", "name", "trigger")

    def __init__(self, trigger: Trigger, name: str, event: object) -> None:
        self.trigger = trigger
        self.name = name
        self.event = event

    def __repr__(self) -> str:
        return f"Event({self.trigger.value}, {self.name!r}, {self.event!r})"


class Batch:
    """A batch of records, each handled and reported on its own (see ``polyserve.batch``).

    ``records`` are the native records; ``decoded`` holds, for each, the
    ``(registration name, event)`` pair or the exception that kept it from being
    decoded (it then fails alone). ``item_id`` gives the id a record is reported by.
    With ``ordered`` (FIFO queues, streams) the first failure stops the batch; with
    ``group_of`` too, it stops only the later records of its group (see ``polyserve.batch``).
    ``trace_of(record)``, where the platform carries a producer's trace with each
    record, reads it (``None`` when there is none); it is called only when needed.
    """

    __slots__ = ("decoded", "group_of", "item_id", "ordered", "records", "trace_of", "trigger")

    def __init__(
        self,
        trigger: Trigger,
        records: Sequence[Any],
        decoded: Sequence[tuple[str, object] | BaseException],
        *,
        item_id: Callable[[Any], str],
        ordered: bool = False,
        trace_of: Callable[[Any], TraceContext | None] | None = None,
        group_of: Callable[[Any], object] | None = None,
    ) -> None:
        self.trigger = trigger
        self.records = records
        self.decoded = decoded
        self.item_id = item_id
        self.ordered = ordered
        self.trace_of = trace_of
        self.group_of = group_of

    @classmethod
    def decode(
        cls,
        trigger: Trigger,
        records: Sequence[Any],
        decode: Callable[[Any], tuple[str, object]],
        *,
        item_id: Callable[[Any], str],
        ordered: bool = False,
        trace_of: Callable[[Any], TraceContext | None] | None = None,
        group_of: Callable[[Any], object] | None = None,
    ) -> Batch:
        """A batch whose records ``decode`` turns into ``(name, event)``; one that fails fails alone."""
        decoded: list[tuple[str, object] | BaseException] = []
        for record in records:
            try:
                decoded.append(decode(record))
            except Exception as exc:
                decoded.append(exc)
        return cls(
            trigger, records, decoded, item_id=item_id, ordered=ordered, trace_of=trace_of,
            group_of=group_of,
        )  # fmt: skip


def __getattr__(name: str) -> Any:
    # LazyClient lives with the idempotency stores, whose module a cold start should
    # not load (it builds dataclasses): it is imported when an adapter's store asks.
    if name == "LazyClient":
        from polyserve.idempotency.store import LazyClient

        return LazyClient
    raise AttributeError(f"module 'polyserve.adapter' has no attribute {name!r}")


# -- running a source ----------------------------------------------------------


def run(app: App, source: Source, raw: Any, context: Context, names: Mapping[str, str]) -> Any:
    """Translate ``raw`` with ``source``, run it on ``app``, and return the native outcome.

    Raises:
        MalformedEventError: a non-HTTP event cannot be read (an HTTP one gets a 400).
        UnsupportedEventError: no handler is registered for a single event.
        Exception: whatever a single event's handler raised, so the platform retries.
    """
    try:
        request = source.to_event(raw, context, names)
    except EventError as exc:
        if not _is_http(source):
            raise
        return source.to_native(error_response(exc, context), raw, context)
    if isinstance(request, Event):
        result = app.handle_event(request.trigger, request.name, request.event, context)
    elif isinstance(request, Batch):
        result = app.handle_batch(
            request.trigger, request.records, context, decoded=request.decoded,
            item_id=request.item_id, ordered=request.ordered, trace_of=request.trace_of,
            group_of=request.group_of,
        )  # fmt: skip
    else:
        result = app.handle_http(request, context)
    return source.to_native(result, raw, context)


async def run_async(
    app: App,
    source: Source,
    raw: Any,
    context: Context,
    names: Mapping[str, str],
    *,
    offload: bool = True,
    stream: bool = False,
) -> Any:
    """``run`` from async code (``offload`` as for ``App.handle_http_async``).

    With ``stream``, an HTTP source's ``to_native`` may get a ``StreamingResponse``
    (see ``polyserve.streaming``) to send chunk by chunk; else bodies come whole.
    """
    try:
        request = source.to_event(raw, context, names)
    except EventError as exc:
        if not _is_http(source):
            raise
        return source.to_native(error_response(exc, context), raw, context)
    if isinstance(request, Event):
        result = await app.handle_event_async(
            request.trigger, request.name, request.event, context, offload=offload
        )
    elif isinstance(request, Batch):
        result = await app.handle_batch_async(
            request.trigger, request.records, context, decoded=request.decoded,
            item_id=request.item_id, ordered=request.ordered, trace_of=request.trace_of,
            group_of=request.group_of, offload=offload,
        )  # fmt: skip
    else:
        result = await app.handle_http_async(request, context, offload=offload, stream=stream)
    return source.to_native(result, raw, context)


def run_native(app: App, provider: str, raw: Any, context: Context, unsupported: Exception) -> Any:
    """Hand ``raw``, which no source of the adapter recognised, to ``@app.native``.

    Returns the handler's result unchanged, for the adapter to give the provider.

    Raises:
        Exception: ``unsupported`` (an ``UnsupportedEventError``) when the app has no
            native handler for ``provider``; else whatever the handler raised.
    """
    if app.find(Trigger.NATIVE, provider) is None:
        raise unsupported
    return app.handle_event(Trigger.NATIVE, provider, raw, context)


async def run_native_async(
    app: App,
    provider: str,
    raw: Any,
    context: Context,
    unsupported: Exception,
    *,
    offload: bool = True,
) -> Any:
    """``run_native`` from async code (``offload`` as for ``App.handle_http_async``)."""
    if app.find(Trigger.NATIVE, provider) is None:
        raise unsupported
    return await app.handle_event_async(Trigger.NATIVE, provider, raw, context, offload=offload)


def _is_http(source: Source) -> bool:
    return source.is_http


# -- responses -----------------------------------------------------------------


def error_response(exc: Exception, context: Context) -> HttpResponse:
    """The HTTP answer for ``exc`` as the app gives it (see ``polyserve.app.error_response``)."""
    from polyserve.app import error_response

    return error_response(exc, context)


def problem(
    status: int,
    code: str,
    detail: str,
    context: Context,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """``HttpResponse.problem`` stamped with the context's invocation id."""
    from polyserve.app import problem

    return problem(status, code, detail, context, extra, headers)


def response_body(response: HttpResponse) -> tuple[str, bool]:
    """``(body, is_base64)``: a text body as is, anything else base64-encoded."""
    text = response.as_text()
    if text is not None:
        return text, False
    return binascii.b2a_base64(response.body, newline=False).decode("ascii"), True


# -- reading provider fields ---------------------------------------------------


def malformed(what: str, exc: Exception) -> MalformedEventError:
    """The error for a ``what`` that failed to translate with ``exc`` (a lookup or type error)."""
    if isinstance(exc, KeyError):
        reason = f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    elif isinstance(exc, AttributeError):
        name = getattr(exc, "name", None)
        reason = f"missing attribute {name!r}" if name else "a field has the wrong type"
    elif isinstance(exc, TypeError):
        reason = "a field has the wrong type"
    elif isinstance(exc, RecursionError):  # a value nested past the stack
        reason = "a value is nested too deeply"
    else:
        reason = str(exc) or type(exc).__name__
    return MalformedEventError(f"malformed {what}: {reason}")


_TRANSLATED = (AttributeError, KeyError, IndexError, TypeError, ValueError, RecursionError)


class translating:  # used as a ``with`` statement, like contextlib's helpers
    """``with translating("SQS record"):`` turns lookup and type errors into ``MalformedEventError``.

    So does a ``RecursionError`` (a value nested past the stack). polyserve's own
    errors pass through unchanged.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        # Never swallows: the error is either left as it is or replaced by the translation.
        if isinstance(exc, _TRANSLATED) and not isinstance(exc, PolyserveError):
            raise malformed(self.what, exc) from None


def as_object(value: Any, what: str, field: str = "") -> dict[str, Any]:
    """``value`` (the ``field`` of a ``what``) if it is a JSON object, else an error."""
    if not isinstance(value, dict):
        where = f"{what} {field}" if field else what
        raise MalformedEventError(f"{where} must be an object, got {type(value).__name__}")
    return value


def json_object(data: Any, what: str) -> dict[str, Any]:
    """Data that must be a JSON object: already decoded, or JSON bytes or text."""
    if isinstance(data, (bytes, bytearray, str)):
        data = parse_json(data, what)
    if data is None:
        raise MalformedEventError(f"{what} is missing")
    return as_object(data, what)


def text(obj: Mapping[str, Any], key: str, what: str) -> str:
    """The required string field ``key`` of ``obj``."""
    value = obj.get(key)
    if not isinstance(value, str):
        problem = "is missing" if value is None else f"must be a string, got {type(value).__name__}"
        raise MalformedEventError(f"{what} field {key!r} {problem}")
    return value


def optional_text(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    """The string field ``key`` of ``obj``, or ``None`` when it is absent or null."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedEventError(f"{what} field {key!r} must be a string, got {type(value).__name__}")


def decode_base64(value: Any, what: str, *, urlsafe: bool = False) -> bytes:
    """Strictly decoded base64 (with ``urlsafe``, also the URL-safe alphabet and no padding).

    Raises:
        MalformedEventError: code ``invalid_base64``.
    """
    if not isinstance(value, str):
        raise MalformedEventError(f"{what} must be a base64 string", code="invalid_base64")
    import base64  # only events that carry base64 pay for the import

    try:
        if urlsafe:
            padded = (value + "=" * (-len(value) % 4)).encode("ascii")
            if "-" in value or "_" in value:
                return base64.urlsafe_b64decode(padded)
            return base64.b64decode(padded, validate=True)
        return base64.b64decode(value, validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedEventError(f"{what} is not valid base64", code="invalid_base64") from None


def _datetime() -> Any:
    # datetime is imported by the first timestamp read: HTTP events carry none.
    import datetime

    return datetime


def from_epoch(seconds: Any, what: str) -> dt.datetime:
    """A UTC datetime from seconds since the epoch (int, float or numeric string)."""
    datetime = _datetime()
    try:
        return datetime.datetime.fromtimestamp(float(seconds), datetime.timezone.utc)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError, OSError):
        raise MalformedEventError(f"{what} is not a timestamp: {seconds!r}") from None


def from_epoch_ms(millis: Any, what: str) -> dt.datetime:
    """A UTC datetime from milliseconds since the epoch (int, float or numeric string)."""
    datetime = _datetime()
    try:
        value = int(millis) if isinstance(millis, (int, str)) else float(millis)
        return datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError, OSError):
        raise MalformedEventError(f"{what} is not a timestamp: {millis!r}") from None


def from_rfc3339(value: Any, what: str) -> dt.datetime:
    """A UTC datetime from an RFC 3339 / ISO 8601 time (``Z`` or an offset; none means UTC).

    Fractions finer than microseconds (Google writes nanoseconds) are cut.
    """
    datetime = _datetime()
    if isinstance(value, str) and value:
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        date, sep, rest = text.replace("t", "T").partition("T")
        if not sep:
            date, sep, rest = text.partition(" ")
        clock, dot, fraction = rest.partition(".")
        if dot:
            digits = len(fraction) - len(fraction.lstrip("0123456789"))
            fraction = fraction[:digits][:6].ljust(6, "0") + fraction[digits:]
            rest = f"{clock}.{fraction}"
        try:
            parsed = datetime.datetime.fromisoformat(f"{date}T{rest}" if sep else date)
        except ValueError:
            pass
        else:
            utc = datetime.timezone.utc
            return parsed.replace(tzinfo=utc) if parsed.tzinfo is None else parsed.astimezone(utc)  # type: ignore[no-any-return]
    raise MalformedEventError(f"{what} is not an RFC 3339 time: {value!r}")
