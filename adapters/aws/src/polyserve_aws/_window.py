"""Kinesis and DynamoDB Streams tumbling windows.

With a tumbling window on the event source mapping, Lambda adds ``window``
(``start``, ``end``), ``state``, ``shardId``, ``eventSourceARN``,
``isFinalInvokeForWindow`` and ``isWindowTerminatedEarly`` to the batch, and
requires a response holding ``state``, which it hands to the next invocation of the
same window. Recognised by a ``window`` object beside ``Records`` of
``aws:kinesis`` or ``aws:dynamodb`` records, or (the final invocation of a window
may carry no records) by the stream ARN.

A ``@app.stream(name, window=True)`` registration gets the whole delivery as one
``StreamWindow`` (``Message`` records for Kinesis, ``StreamRecord`` for DynamoDB)
and returns the new state; the answer is ``{"state": new, "batchItemFailures": []}``
(``None`` keeps the state as it came). A record that cannot be read, or a handler
that raises, fails the invocation, so Lambda retries the batch with the same state.

Any other registration takes the records one by one as without a window, and the
answer carries the state unchanged beside ``batchItemFailures``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from polyserve.adapter import (
    Batch,
    Event,
    as_object,
    from_rfc3339,
    optional_text,
    text,
    translating,
)
from polyserve.batch import BatchResult
from polyserve.errors import ConfigurationError, MalformedEventError
from polyserve.events import StreamWindow
from polyserve.routing import Trigger
from polyserve_aws import _dynamodb, _kinesis
from polyserve_aws._batch import batch_response
from polyserve_aws._wire import first_record, logical_name

if TYPE_CHECKING:
    from polyserve.app import App
    from polyserve.context import Context

__all__ = ["Windows", "is_http", "matches"]

is_http = False

_WHAT = "tumbling window event"
_FAMILIES = {"aws:kinesis": _kinesis, "aws:dynamodb": _dynamodb}


def matches(raw: dict[str, Any]) -> bool:
    """True for a Kinesis or DynamoDB Streams batch of a tumbling window."""
    return isinstance(raw.get("window"), dict) and _family(raw) is not None


def _family(raw: dict[str, Any]) -> Any:
    record = first_record(raw)
    if record is not None:
        return _FAMILIES.get(record.get("eventSource"))  # type: ignore[arg-type]
    arn = raw.get("eventSourceARN")
    if isinstance(arn, str) and arn.startswith("arn:"):
        service = arn.split(":", 3)[2:3]
        if service == ["kinesis"]:
            return _kinesis
        if service == ["dynamodb"]:
            return _dynamodb
    return None


class Windows:
    """The window source for one app: it looks up whether the registration takes windows."""

    __slots__ = ("_app",)

    is_http = False

    def __init__(self, app: App) -> None:
        self._app = app

    def matches(self, raw: Any) -> bool:
        return matches(raw)

    def to_event(
        self, raw: dict[str, Any], context: Context, names: Mapping[str, str]
    ) -> Event | Batch:
        """One ``StreamWindow`` for a ``window=True`` registration, else the records.

        Raises:
            MalformedEventError: the window fields (or, for a window registration, a
                record) cannot be read.
        """
        family = _family(raw)
        records = raw.get("Records") or []
        if not isinstance(records, list):
            raise MalformedEventError(f"{_WHAT} Records must be a list")
        with translating(_WHAT):
            arn = raw.get("eventSourceARN")
            if not isinstance(arn, str):
                arn = text(as_object(records[0], _WHAT, "record"), "eventSourceARN", _WHAT)
            name = logical_name(arn, names)
            registration = self._app.find(Trigger.STREAM, name)
            if registration is None or not registration.options.get("window"):
                if not records:
                    return Batch(Trigger.STREAM, (), (), item_id=str, ordered=True)
                request: Batch = family.to_event(raw, context, names)
                return request
            window = as_object(raw["window"], _WHAT, "window")
            state = raw.get("state")
            typed = StreamWindow(
                source=name,
                start=from_rfc3339(window.get("start"), f"{_WHAT} window start"),
                end=from_rfc3339(window.get("end"), f"{_WHAT} window end"),
                records=tuple(_records(family, records, names)),
                state={} if state is None else as_object(state, _WHAT, "state"),
                is_final=raw.get("isFinalInvokeForWindow") is True,
                is_terminated_early=raw.get("isWindowTerminatedEarly") is True,
                shard=optional_text(raw, "shardId", _WHAT),
                raw=raw,
            )
        return Event(Trigger.STREAM, name, typed)

    def to_native(self, outcome: Any, raw: dict[str, Any], context: Context) -> dict[str, Any]:
        """``{"state": ..., "batchItemFailures": [...]}``, as Lambda requires with windows."""
        state = raw.get("state")
        if isinstance(outcome, BatchResult):
            failures = batch_response(outcome)["batchItemFailures"]
        else:
            failures = []
            if outcome is not None:
                if not isinstance(outcome, Mapping):
                    raise ConfigurationError(
                        "a window handler returns the new state as a dict, or None to keep it; "
                        f"got {type(outcome).__name__}"
                    )
                state = dict(outcome)
        return {"state": {} if state is None else state, "batchItemFailures": failures}


def _records(family: Any, records: list[Any], names: Mapping[str, str]) -> list[Any]:
    if family is _kinesis:
        return [_kinesis.message(record, names) for record in records]
    return [_dynamodb.stream_record(record, names) for record in records]
