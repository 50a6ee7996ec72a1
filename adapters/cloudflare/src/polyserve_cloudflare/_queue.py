"""Queue consumers: a ``MessageBatch`` in, one ``ack()`` or ``retry()`` per message out.

Each message becomes a ``Message`` handled on its own. Its body becomes bytes:
a string as UTF-8, an ``ArrayBuffer`` or typed array as its bytes, and any other
value (an object, an array, a number, ``null``) as its JSON text, whether it
arrives as a JavaScript value or, as Cloudflare's ``workers`` SDK passes a
class-based entrypoint's batch, already converted to Python dicts and lists. A message that
succeeds is acknowledged; one whose handler fails, or that cannot be decoded, is
retried, so Queues redelivers it (and dead-letters it after ``max_retries``).
A message that polyserve's Cloudflare backend sent with attributes or a trace
arrives in a JSON envelope (see ``unwrap``): the handler gets the original body
and the attributes, and its ``Context.trace_id`` continues the producer's trace.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, TypeGuard

from polyserve.adapter import Batch
from polyserve.errors import MalformedEventError, PolyserveError
from polyserve.events import Message
from polyserve.routing import Trigger
from polyserve.tracing import from_traceparent
from polyserve_cloudflare._time import from_js_time

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from polyserve.batch import BatchResult
    from polyserve.context import Context, ContextLogger
    from polyserve.tracing import TraceContext
    from polyserve_cloudflare.types import JsMessageBatch, JsQueueMessage, JsRuntime

__all__ = [
    "MAX_RETRY_DELAY",
    "Delivery",
    "body_bytes",
    "is_batch",
    "is_http",
    "matches",
    "settle",
    "source_name",
    "to_event",
    "to_message",
    "to_native",
    "unwrap",
]

MAX_RETRY_DELAY = 86_400
"""Cloudflare's largest per-message retry delay, in seconds (24 hours, raised from 12)."""

_ENVELOPE_START = b'{"polyserve_message":1,'
_NO_ATTRIBUTES: Mapping[str, str] = {}

is_http = False


class Delivery:
    """What the queue source translates: a ``MessageBatch`` with its messages read
    once, the runtime, and the retry delay for failures that asked for none."""

    __slots__ = ("batch", "messages", "retry_delay", "runtime", "storage")

    def __init__(
        self,
        batch: JsMessageBatch,
        runtime: JsRuntime,
        retry_delay: int | None,
        *,
        storage: bool = False,
    ) -> None:
        self.batch = batch
        self.messages: list[JsQueueMessage] = list(batch.messages)
        self.runtime = runtime
        self.retry_delay = retry_delay
        self.storage = storage
        """The messages are R2 event notifications (see ``polyserve_cloudflare._r2``)."""


def matches(raw: object) -> TypeGuard[Delivery]:
    """True when ``raw`` is a ``Delivery``."""
    return isinstance(raw, Delivery)


def to_event(raw: Delivery, context: Context, names: Mapping[str, str]) -> Batch:
    """One batch of ``Message`` records, or of ``StorageEvent`` records for R2
    notifications; a message that cannot be decoded fails alone."""
    runtime = raw.runtime
    if raw.storage:
        from polyserve_cloudflare._r2 import to_storage_event

        def notification(message: JsQueueMessage) -> tuple[str, object]:
            return to_storage_event(message, runtime, names)

        return Batch.decode(Trigger.STORAGE, raw.messages, notification, item_id=_item_id)
    source = source_name(raw.batch, names)
    traces: dict[int, TraceContext] = {}

    def decode(message: JsQueueMessage) -> tuple[str, object]:
        event = to_message(message, source, runtime)
        if event.attributes:
            trace = from_traceparent(
                event.attributes.get("traceparent"), event.attributes.get("tracestate")
            )
            if trace is not None:
                traces[id(message)] = trace
        return source, event

    def trace_of(message: JsQueueMessage) -> TraceContext | None:
        return traces.get(id(message))

    return Batch.decode(Trigger.QUEUE, raw.messages, decode, item_id=_item_id, trace_of=trace_of)


def to_native(outcome: BatchResult, raw: Delivery, context: Context) -> BatchResult:
    """Ack or retry every message (see ``settle``) and return ``outcome``.

    Raises:
        PolyserveError: code ``queue_settle_failed`` when an ``ack()`` or
            ``retry()`` call failed, so that Queues redelivers what is unsettled.
    """
    broken = settle(
        raw.messages,
        outcome,
        retry_delay=raw.retry_delay,
        runtime=raw.runtime,
        logger=context.logger,
    )
    if broken:
        raise PolyserveError(
            f"could not acknowledge or retry queue messages {broken}",
            code="queue_settle_failed",
        )
    return outcome


def _item_id(message: JsQueueMessage) -> str:
    return str(message.id)


def is_batch(raw: object) -> TypeGuard[JsMessageBatch]:
    """True when ``raw`` looks like a Queues ``MessageBatch``."""
    return hasattr(raw, "queue") and hasattr(raw, "messages")


def source_name(batch: JsMessageBatch, names: Mapping[str, str]) -> str:
    """The logical queue name: ``names[queue]`` when mapped, else the queue's own name."""
    queue = str(batch.queue)
    return names.get(queue, queue)


def to_message(message: JsQueueMessage, source: str, runtime: JsRuntime) -> Message:
    """The ``Message`` for one queue message.

    Raises:
        MalformedEventError: the body, timestamp or attempt count cannot be decoded.
    """
    attempts = message.attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise MalformedEventError(f"message attempts is not a positive integer: {attempts!r}")
    body = body_bytes(message.body, runtime)
    attributes: Mapping[str, str] = _NO_ATTRIBUTES
    if body.startswith(_ENVELOPE_START):
        body, attributes = unwrap(body)
    return Message(
        id=str(message.id),
        body=body,
        attributes=attributes,
        attempt=attempts,
        enqueued_at=from_js_time(message.timestamp, "message timestamp"),
        source=source,
        raw=message,
    )


def unwrap(envelope: bytes) -> tuple[bytes, dict[str, str]]:
    """The body and attributes of a message polyserve's Cloudflare backend sent in an envelope.

    Queues carries no attributes, so a message sent with attributes or a trace is the
    JSON object ``{"polyserve_message": 1, "attributes": {...}, "text": ...}`` (or
    ``"base64"`` for bytes that are not UTF-8 text).

    Raises:
        MalformedEventError: the envelope is not one.
    """
    from polyserve.adapter import decode_base64, json_object

    data = json_object(envelope, "message envelope")
    attributes = data.get("attributes")
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise MalformedEventError("message envelope attributes are not text to text")
    text = data.get("text")
    if isinstance(text, str):
        return _utf8(text), attributes
    return decode_base64(data.get("base64"), "message envelope base64"), attributes


def body_bytes(value: Any, runtime: JsRuntime) -> bytes:
    """A message body as bytes; see the module docstring for the rules.

    Raises:
        MalformedEventError: the value has no JSON form (a function, a cycle, a
            non-finite number) or is text with a lone surrogate.
    """
    if isinstance(value, str):
        return _utf8(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    # Checked before buffers: Python's int has a to_bytes method too.
    if value is None or isinstance(value, (bool, int, float)):
        return _dumps(value)
    if isinstance(value, (dict, list)):
        # Cloudflare's ``workers`` SDK hands a class-based entrypoint a batch whose
        # object and array bodies are already converted to Python dicts and lists.
        return _dumps_compact(value)
    if callable(getattr(value, "to_bytes", None)):
        try:
            return bytes(value.to_bytes())
        except Exception as exc:
            raise MalformedEventError(f"message body could not be read: {exc}") from None
    try:
        text = runtime.json_stringify(value)
    except Exception as exc:
        raise MalformedEventError(f"message body has no JSON form: {exc}") from None
    if text is None:
        raise MalformedEventError(f"message body has no JSON form: {type(value).__name__}")
    return _utf8(text)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A JavaScript string may hold a lone surrogate, which UTF-8 cannot carry.
        raise MalformedEventError("message body is not valid Unicode text") from None


def _dumps_compact(value: object) -> bytes:
    # The same text JSON.stringify gives: no spaces, non-ASCII kept.
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MalformedEventError(f"message body has no JSON form: {exc}") from None
    return _utf8(text)


def _dumps(value: object) -> bytes:
    try:
        return json.dumps(value, allow_nan=False).encode()
    except ValueError:
        raise MalformedEventError(f"message body is not a JSON number: {value!r}") from None


def settle(
    messages: Sequence[JsQueueMessage],
    result: BatchResult,
    *,
    retry_delay: int | None,
    runtime: JsRuntime,
    logger: ContextLogger,
) -> list[str]:
    """Acknowledge each message the batch acknowledged and retry every other one.

    A message is acknowledged only when its id is among ``result.acknowledged``
    (handled, or set aside by ``on_poison``) and not among the failures; anything
    else, including a message whose id could not be read, is retried. A failure
    that asked for a delay (``raise Retry(delay=...)``) is retried after it, rounded
    up to whole seconds and capped at Cloudflare's 24 hours; the others after
    ``retry_delay`` (``None``: the queue's own setting). Returns the ids whose
    ``ack()`` or ``retry()`` call itself failed (logged here), so the caller can
    fail the invocation.
    """
    failures = {f.item_id: f for f in result.failed}
    acknowledged = set(result.acknowledged) - failures.keys()
    broken: list[str] = []
    for index, message in enumerate(messages):
        ident = _id_of(message, index)
        is_ack = ident in acknowledged
        try:
            if is_ack:
                message.ack()
                continue
            failure = failures.get(ident)
            delay = retry_delay
            if failure is not None and failure.retry_delay is not None:
                delay = min(MAX_RETRY_DELAY, math.ceil(failure.retry_delay))
            if delay is None:
                message.retry()
            else:
                message.retry(runtime.new_object({"delaySeconds": delay}))
        except Exception as exc:
            action = "ack" if is_ack else "retry"
            logger.error(f"queue message {action} failed", exc=exc, item_id=ident)
            broken.append(ident)
    return broken


def _id_of(message: JsQueueMessage, index: int) -> str:
    # The same fallback as the batch processor: the position when the id is unreadable.
    try:
        return str(message.id)
    except Exception:
        return str(index)
