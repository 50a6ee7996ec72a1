"""Sending to a Service Bus queue or topic through azure-servicebus: messages and batches.

Each ``Message`` becomes a ``ServiceBusMessage``: the body as it is, ``content_type``,
the attributes as application properties (``subject`` also fills the subject), ``key``
as the session id (a session-enabled entity keeps a session's messages in order),
``dedup_id`` as the message id (what duplicate detection compares; a new one is made
when there is none), ``delay`` as the scheduled enqueue time. The application
properties are ``Message.headers()``: the attributes, ``content-type`` and the trace as
``traceparent`` / ``tracestate``, which the Service Bus trigger reads back into the
consumer's context (azure-servicebus adds ``Diagnostic-Id`` itself when azure-core
tracing is enabled).

Messages are packed into ``ServiceBusMessageBatch`` es, which measure each message as
AMQP encodes it: a message too large for an empty batch is refused before anything
is sent; a batch the service refuses fails exactly its own messages.
"""

from __future__ import annotations

from polyserve.errors import ConfigurationError
from polyserve.outbound.errors import MessageTooLargeError, PublishError, TransientPublishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from polyserve.outbound.message import Message

__all__ = ["LIMITS", "error", "pack", "to_servicebus"]

KIB = 1024
#: The largest message and batch per tier (Service Bus quotas): 256 KB on Standard,
#: 100 MB on Premium over AMQP. Properties count toward the size.
LIMITS = {"basic": 256 * KIB, "standard": 256 * KIB, "premium": 100 * KIB * KIB}


def to_servicebus(message: Message) -> Any:
    """``message`` as an ``azure.servicebus.ServiceBusMessage``.

    Raises:
        PublishError: the session id or message id is longer than Service Bus allows.
    """
    from azure.servicebus import ServiceBusMessage

    properties: dict[str | bytes, Any] = dict(message.headers().items())
    scheduled = None
    if message.delay:
        import datetime as dt

        scheduled = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=message.delay)
    if message.dedup_id:
        message_id = message.dedup_id
    else:
        import uuid

        message_id = uuid.uuid4().hex
    try:
        return ServiceBusMessage(
            message.body,
            application_properties=properties,
            session_id=message.key,
            message_id=message_id,
            content_type=message.content_type,
            subject=message.attributes.get("subject"),
            scheduled_enqueue_time_utc=scheduled,
        )
    except ValueError as exc:  # an id over 128 characters
        raise PublishError(f"not a valid Service Bus message: {exc}") from None


def pack(
    messages: Sequence[Message],
    new_batch: Callable[[], Any],
    send: Callable[[Any], None],
    entity: str,
    limit: int,
) -> list[str | Exception]:
    """Send ``messages`` in as few batches as fit; per message its id or its error.

    ``new_batch()`` makes an empty ``ServiceBusMessageBatch`` (the sender's
    ``create_message_batch``) and ``send(batch)`` sends one. A message that does not
    fit an empty batch gets a ``MessageTooLargeError`` and is not sent; every message
    of a batch that ``send`` fails for gets that batch's error. A batch holds messages
    of one session id (``key``) only, as partitioned entities require.
    """
    from azure.servicebus.exceptions import MessageSizeExceededError

    out: list[str | Exception] = [PublishError("not sent")] * len(messages)
    batch = None
    session = None
    members: list[tuple[int, str]] = []

    def flush() -> None:
        try:
            send(batch)
        except Exception as exc:  # mapped to the typed errors, per message
            failed = error(exc, entity)
            for i, _ in members:
                out[i] = failed
        else:
            for i, message_id in members:
                out[i] = message_id
        members.clear()

    for i, message in enumerate(messages):
        try:
            native = to_servicebus(message)
        except PublishError as exc:
            out[i] = exc
            continue
        if members and native.session_id != session:
            # A batch holds one session: partitioned entities refuse a batch that mixes them.
            flush()
            batch = None
        session = native.session_id
        if batch is None:
            batch = new_batch()
        try:
            batch.add_message(native)
        except MessageSizeExceededError:
            if members:
                flush()
                batch = new_batch()
                try:
                    batch.add_message(native)
                except MessageSizeExceededError:
                    out[i] = MessageTooLargeError(entity, len(message.body), limit, "Service Bus")
                    continue
            else:
                out[i] = MessageTooLargeError(entity, len(message.body), limit, "Service Bus")
                continue
        members.append((i, str(native.message_id)))
    if members:
        flush()
    return out


def error(exc: BaseException, entity: str) -> Exception:
    """The typed error for what azure-servicebus raised while sending to ``entity``."""
    from azure.servicebus import exceptions as sb

    name = type(exc).__name__
    if isinstance(exc, sb.MessageSizeExceededError):
        return PublishError(f"Service Bus refused the batch for {entity!r} as too large")
    if isinstance(
        exc,
        (
            sb.MessagingEntityNotFoundError,
            sb.MessagingEntityDisabledError,
            sb.ServiceBusAuthenticationError,
            sb.ServiceBusAuthorizationError,
        ),
    ):
        return ConfigurationError(
            f"Service Bus entity {entity!r}: {name} (check the name and the connection or identity)"
        )
    if isinstance(
        exc,
        (
            sb.ServiceBusServerBusyError,
            sb.ServiceBusConnectionError,
            sb.ServiceBusCommunicationError,
            sb.OperationTimeoutError,
        ),
    ) or (isinstance(exc, sb.ServiceBusError) and getattr(exc, "_retryable", False)):
        return TransientPublishError(f"Service Bus {entity!r}: {name}")
    if isinstance(exc, PublishError | ConfigurationError):
        return exc
    return PublishError(f"Service Bus {entity!r}: {name}: {str(exc)[:300]}")
