"""A Storage Queue host: runs the queue functions of a ``FunctionApp`` against a real queue service.

`QueueHost` drives the functions of an ``azure.functions.FunctionApp`` the way the Functions host's
queue trigger does, against any Storage Queue endpoint (Azurite in the tests):

1. It reads each function's ``queueTrigger`` binding (``queueName``, ``connection``, ``dataType``)
   from the JSON the worker indexes, and looks ``connection`` up in the app settings it is given.
2. It gets up to ``batch_size`` messages per queue in one call (host.json ``queues.batchSize``,
   16), each hidden for ``visibility_timeout`` seconds.
3. It builds each ``azure.functions.QueueMessage`` with the worker's own converter, from the
   base64-decoded body (host.json ``queues.messageEncoding``, ``base64`` by default) and the trigger
   metadata the host sends: ``Id``, ``DequeueCount``, ``InsertionTime``, ``ExpirationTime``,
   ``NextVisibleTime`` and ``PopReceipt``.
4. It calls the function, with a ``context`` when the function takes one. When the call returns,
   the message is deleted. When it raises and the dequeue count has reached
   ``max_dequeue_count`` (host.json ``queues.maxDequeueCount``, 5), the message is copied to
   ``<queue>-poison`` and deleted. Otherwise it is left alone and comes back when its visibility
   timeout ends, with a dequeue count one higher.
5. A message that arrives with a dequeue count above ``max_dequeue_count`` (an earlier invocation
   crashed or timed out) goes to ``<queue>-poison`` without a call.

Two differences from the host, neither of which changes what happens to a message: the host
releases a failed message at once (``queues.visibilityTimeout``, 0 by default) where this one lets
its visibility timeout run out, and this one handles messages one at a time where the host runs up
to ``batchSize + newBatchThreshold`` at once.

Every delivery is recorded as a `Delivery`. `QueueHost.run_until_empty` polls until every queue is
empty, and raises ``TimeoutError`` if that takes longer than the time it is given.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import azure.functions as func
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from azure.storage.queue import QueueClient
    from azure.storage.queue import QueueMessage as StoredMessage
    from typing_extensions import Self

__all__ = ["POISON_SUFFIX", "Delivery", "InvocationContext", "QueueHost", "queue_client"]

POISON_SUFFIX = "-poison"

Outcome = Literal["completed", "failed", "poisoned"]

# Azure rejects a visibility timeout under one second when getting messages, and more than
# 32 messages per call.
_MIN_VISIBILITY_TIMEOUT = 1
_MAX_BATCH_SIZE = 32
# Each request to the queue service is bounded, so a stuck service cannot stall a test.
_CONNECTION_TIMEOUT = 5
_READ_TIMEOUT = 10


def queue_client(connection_string: str, queue_name: str) -> QueueClient:
    """A client for one queue that base64-encodes bodies, as the Functions host expects them.

    Send bytes with it; received messages carry their body as bytes.
    """
    # Imported here so this module loads without azure-storage-queue, and the tests that
    # need it can skip with a reason instead of failing to import.
    from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

    return QueueClient.from_connection_string(
        connection_string,
        queue_name,
        message_encode_policy=BinaryBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
        connection_timeout=_CONNECTION_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message taken from a queue, and what became of it.

    ``outcome`` is ``"completed"`` (the function returned; the message was deleted),
    ``"failed"`` (the function raised; the message was left to come back) or ``"poisoned"``
    (moved to ``<queue>-poison``; ``invoked`` says whether the function ran first).
    """

    queue: str
    function_name: str
    message_id: str
    dequeue_count: int
    outcome: Outcome
    invoked: bool
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class InvocationContext:
    """What the worker's invocation context gives a queue function: its id and the function's name."""

    invocation_id: str
    function_name: str


@dataclass
class _QueueFunction:
    name: str
    queue: str
    argument: str
    is_binary: bool
    takes_context: bool
    call: Callable[..., Any]
    client: QueueClient
    poison: QueueClient
    has_poison_queue: bool = False


class QueueHost:
    """Runs the queue-triggered functions of ``functions`` against real queues.

    Args:
        functions: the ``FunctionApp`` whose queue functions to run.
        settings: app settings; each binding's ``connection`` names the connection string.
        visibility_timeout: seconds a received message stays hidden (at least 1).
        max_dequeue_count: deliveries before a failing message moves to ``<queue>-poison``.
        batch_size: messages received per call and queue (1 to 32).
        poll_interval: seconds between polls while the queues hold only hidden messages.

    Raises:
        ValueError: a setting is out of range, a connection is not in ``settings``, or
            ``functions`` has no queue-triggered function.
    """

    def __init__(
        self,
        functions: func.FunctionApp,
        settings: Mapping[str, str],
        *,
        visibility_timeout: int = 30,
        max_dequeue_count: int = 5,
        batch_size: int = 16,
        poll_interval: float = 0.05,
    ) -> None:
        if visibility_timeout < _MIN_VISIBILITY_TIMEOUT:
            raise ValueError(f"visibility_timeout must be at least 1 s, got {visibility_timeout}")
        if max_dequeue_count < 1:
            raise ValueError(f"max_dequeue_count must be at least 1, got {max_dequeue_count}")
        if not 1 <= batch_size <= _MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be from 1 to 32, got {batch_size}")
        self.visibility_timeout = visibility_timeout
        self.max_dequeue_count = max_dequeue_count
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.deliveries: list[Delivery] = []
        found = (_queue_function(fn, settings) for fn in functions.get_functions())
        self._functions = [fn for fn in found if fn is not None]
        if not self._functions:
            raise ValueError("the FunctionApp has no queue-triggered function")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the queue clients."""
        for fn in self._functions:
            fn.client.close()
            fn.poison.close()

    def poll(self) -> list[Delivery]:
        """Get one batch from each queue and handle every message in it; return the deliveries."""
        handled: list[Delivery] = []
        for fn in self._functions:
            pages = fn.client.receive_messages(
                messages_per_page=self.batch_size, visibility_timeout=self.visibility_timeout
            ).by_page()
            # One call to the service, as the host makes: the pager would otherwise keep
            # getting messages until the queue is empty.
            for message in next(pages, ()):
                handled.append(self._deliver(fn, message))
        self.deliveries.extend(handled)
        return handled

    def run_until_empty(self, timeout: float) -> list[Delivery]:
        """Poll until every queue is empty, hidden messages included; return the deliveries.

        Raises:
            TimeoutError: the queues still hold messages after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        first = len(self.deliveries)
        while True:
            handled = self.poll()
            if not handled:
                remaining = self.remaining()
                if not any(remaining.values()):
                    return self.deliveries[first:]
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"the queues still hold messages after {timeout:.0f} s: {remaining}"
                    )
                time.sleep(self.poll_interval)
            elif time.monotonic() >= deadline:
                raise TimeoutError(f"messages still arrive after {timeout:.0f} s")

    def remaining(self) -> dict[str, int]:
        """The approximate number of messages in each queue, visible or not."""
        return {
            fn.queue: fn.client.get_queue_properties().approximate_message_count or 0
            for fn in self._functions
        }

    def _deliver(self, fn: _QueueFunction, message: StoredMessage) -> Delivery:
        count = message.dequeue_count or 1
        if count > self.max_dequeue_count:
            self._move_to_poison(fn, message)
            return Delivery(fn.queue, fn.name, message.id, count, "poisoned", invoked=False)
        try:
            self._invoke(fn, message)
        except Exception as exc:
            if count >= self.max_dequeue_count:
                self._move_to_poison(fn, message)
                return Delivery(fn.queue, fn.name, message.id, count, "poisoned", True, exc)
            return Delivery(fn.queue, fn.name, message.id, count, "failed", True, exc)
        fn.client.delete_message(message.id, message.pop_receipt)
        return Delivery(fn.queue, fn.name, message.id, count, "completed", invoked=True)

    def _invoke(self, fn: _QueueFunction, message: StoredMessage) -> None:
        arguments: dict[str, Any] = {fn.argument: _native_message(message, fn.is_binary)}
        if fn.takes_context:
            arguments["context"] = InvocationContext(str(uuid.uuid4()), fn.name)
        fn.call(**arguments)

    def _move_to_poison(self, fn: _QueueFunction, message: StoredMessage) -> None:
        if not fn.has_poison_queue:
            from azure.core.exceptions import ResourceExistsError

            # The host creates the poison queue the first time it needs it.
            with contextlib.suppress(ResourceExistsError):
                fn.poison.create_queue()
            fn.has_poison_queue = True
        # Copied first, then deleted: a failure in between leaves a copy, never nothing.
        fn.poison.send_message(_body(message))
        fn.client.delete_message(message.id, message.pop_receipt)


def _queue_function(fn: func.Function, settings: Mapping[str, str]) -> _QueueFunction | None:
    """The queue function ``fn`` describes, or ``None`` when it has no queue trigger."""
    bindings: list[dict[str, Any]] = json.loads(fn.get_function_json())["bindings"]
    trigger = next((b for b in bindings if b.get("type") == "queueTrigger"), None)
    if trigger is None:
        return None
    connection = str(trigger.get("connection") or "AzureWebJobsStorage")
    connection_string = settings.get(connection)
    if connection_string is None:
        raise ValueError(f"the app setting {connection!r} (a queue connection) is not set")
    queue = str(trigger["queueName"])
    call = fn.get_user_function()
    return _QueueFunction(
        name=fn.get_function_name() or call.__name__,
        queue=queue,
        argument=str(trigger["name"]),
        is_binary=str(trigger.get("dataType", "")).upper() == "BINARY",
        takes_context="context" in inspect.signature(call).parameters,
        call=call,
        client=queue_client(connection_string, queue),
        poison=queue_client(connection_string, queue + POISON_SUFFIX),
    )


def _native_message(message: StoredMessage, is_binary: bool) -> func.QueueMessage:
    """The ``QueueMessage`` the worker builds from the host's data and trigger metadata."""
    body = _body(message)
    data = meta.Datum(body, "bytes") if is_binary else meta.Datum(body.decode(), "string")
    values = {
        "Id": meta.Datum(message.id, "string"),
        "DequeueCount": meta.Datum(message.dequeue_count, "int"),
        "InsertionTime": _time(message.inserted_on),
        "ExpirationTime": _time(message.expires_on),
        "NextVisibleTime": _time(message.next_visible_on),
        "PopReceipt": meta.Datum(message.pop_receipt, "string"),
    }
    # The host leaves out what it does not know; the converter reads a missing field as None.
    metadata = {key: datum for key, datum in values.items() if datum.value is not None}
    native = QueueMessageInConverter.decode(data, trigger_metadata=metadata)
    assert isinstance(native, func.QueueMessage)
    return native


def _time(value: dt.datetime | None) -> meta.Datum:
    # The host serialises times as JSON strings.
    return meta.Datum(None if value is None else json.dumps(value.isoformat()), "json")


def _body(message: StoredMessage) -> bytes:
    content = message.content
    if isinstance(content, str):
        return content.encode()
    return bytes(content or b"")
