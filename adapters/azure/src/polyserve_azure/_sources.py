"""The event sources of the Azure adapter, each implementing ``polyserve.adapter.Source``.

A generated function serves one native entity (a queue, a hub, a topic, a container,
a schedule), so its source is an object bound to that entity's trigger and logical
name when the function is built: ``to_event(raw, context, names)`` needs no name from
the native object (which often carries none) and ignores ``names``, which were applied
then. Each function then runs ``polyserve.adapter.run(app, source, raw, context, names)``.
The per-record readers stay in the trigger modules (``_queue.read``, ``_eventhub.read``,
...), which are not sources themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import Batch, Event
from polyserve.events import StorageAction
from polyserve.routing import Trigger
from polyserve_azure import (
    _blob,
    _cosmos,
    _eventgrid,
    _eventhub,
    _http,
    _invoke,
    _kafka,
    _queue,
    _servicebus,
    _settings,
    _timer,
    _tracing,
)
from polyserve_azure._batch import raise_for_failures

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.app import App
    from polyserve.batch import BatchResult
    from polyserve.context import Context
    from polyserve.events import HttpRequest, HttpResponse
    from polyserve_azure._identity import Identity

__all__ = [
    "BlobSource",
    "CosmosSource",
    "EventGridSource",
    "EventHubSource",
    "HttpSource",
    "KafkaSource",
    "QueueSource",
    "ServiceBusSource",
    "TimerSource",
]


class HttpSource:
    """The one HTTP function's requests; the caller's identity and trace come from headers."""

    is_http = True

    def __init__(self, route_prefix: str, identify: Identity) -> None:
        self.route_prefix = route_prefix
        self.identify = identify

    def matches(self, raw: Any) -> bool:
        return _http.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> HttpRequest:
        request = _http.read(raw, context, route_prefix=self.route_prefix)
        context.principal_from(self.identify, request.headers)
        context.trace_from(_tracing.http_trace, (request.headers, context.raw))
        return request

    def to_native(self, outcome: HttpResponse, raw: Any, context: Context) -> Any:
        return _http.native_response(outcome)


class _EntitySource:
    """A source bound to one trigger and logical name; subclasses read the records."""

    is_http = False
    what = "event"

    def __init__(self, trigger: Trigger, name: str) -> None:
        self.trigger = trigger
        self.name = name

    def matches(self, raw: Any) -> bool:
        raise NotImplementedError

    def to_native(self, outcome: Any, raw: Any, context: Context) -> None:
        """Nothing: Azure's event triggers have no output binding."""
        return None

    def _check(self, raw: Any) -> Any:
        return _invoke.expect(raw, self.matches, self.what)


class _BatchSource(_EntitySource):
    """A source whose invocations are batches: a batch with a failed record raises."""

    def to_native(self, outcome: BatchResult, raw: Any, context: Context) -> None:
        """Nothing when every record succeeded or was set aside.

        Raises:
            BatchFailedError: records failed, so the host counts the invocation as
                failed and its retry policy runs it again.
        """
        raise_for_failures(outcome)


class QueueSource(_EntitySource):
    """A Storage Queue message (``azure.functions.QueueMessage``)."""

    what = "queue message"

    def matches(self, raw: Any) -> bool:
        return _queue.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Event:
        message = _queue.read(self._check(raw), context, source=self.name)
        return Event(self.trigger, self.name, message)


class ServiceBusSource(_EntitySource):
    """A Service Bus queue or topic message; its ``Diagnostic-Id`` is the producer's trace."""

    what = "Service Bus message"

    def matches(self, raw: Any) -> bool:
        return _servicebus.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Event:
        msg = self._check(raw)
        context.trace_from(_tracing.message_trace, (_servicebus.properties_of(msg), context.raw))
        return Event(self.trigger, self.name, _servicebus.read(msg, context, source=self.name))


class BlobSource(_EntitySource):
    """A created blob (``azure.functions.InputStream``) of one container."""

    what = "blob"

    def __init__(self, trigger: Trigger, name: str, container: str) -> None:
        super().__init__(trigger, name)
        self.container = container

    def matches(self, raw: Any) -> bool:
        return _blob.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Event:
        event = _blob.read(self._check(raw), context, container=self.container)
        return Event(self.trigger, self.name, event)


class TimerSource(_EntitySource):
    """A timer tick (``azure.functions.TimerRequest``)."""

    what = "timer"

    def matches(self, raw: Any) -> bool:
        return _timer.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Event:
        return Event(
            self.trigger, self.name, _timer.read(self._check(raw), context, name=self.name)
        )


class EventHubSource(_BatchSource):
    """A batch of one partition's events, in order; each continues its producer's trace."""

    what = "Event Hubs batch"

    def matches(self, raw: Any) -> bool:
        return _eventhub.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Batch:
        name, attempt = self.name, _invoke.retry_attempt(context.raw)
        return Batch.decode(
            self.trigger,
            list(enumerate(self._check(raw))),
            lambda item: (name, _eventhub.read(item[1], item[0], source=name, attempt=attempt)),
            item_id=lambda item: _eventhub.item_id(item[1], item[0]),
            ordered=True,
            trace_of=lambda item: _eventhub.trace_of(item[1], item[0]),
        )


class KafkaSource(_BatchSource):
    """One Kafka record or a batch; a record that fails fails alone unless ``ordered``."""

    what = "Kafka record or batch"

    def __init__(self, trigger: Trigger, name: str, ordered: bool) -> None:
        super().__init__(trigger, name)
        self.ordered = ordered

    def matches(self, raw: Any) -> bool:
        return _kafka.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Batch:
        name, attempt = self.name, _invoke.retry_attempt(context.raw)
        return Batch.decode(
            self.trigger,
            list(enumerate(_kafka.records(self._check(raw)))),
            lambda item: (name, _kafka.read(item[1], item[0], source=name, attempt=attempt)),
            item_id=lambda item: _kafka.failure_id(item[1], item[0]),
            ordered=self.ordered,
            trace_of=lambda item: _kafka.trace_of(item[1], item[0]),
        )


class CosmosSource(_BatchSource):
    """A batch of a container's changed documents, in order."""

    what = "Cosmos DB batch"

    def __init__(self, trigger: Trigger, name: str, partition_key: tuple[str, ...]) -> None:
        super().__init__(trigger, name)
        self.partition_key = partition_key

    def matches(self, raw: Any) -> bool:
        return _cosmos.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Batch:
        name, paths = self.name, self.partition_key
        return Batch.decode(
            self.trigger,
            list(enumerate(self._check(raw))),
            lambda item: (name, _cosmos.read(item[1], source=name, partition_key=paths)),
            item_id=lambda item: _cosmos.item_id(item[1], item[0]),
            ordered=True,
        )


class EventGridSource:
    """The one Event Grid function: blob events for storage registrations, else CloudEvents.

    A blob event goes to the storage registration of its container (through ``names``)
    when one handles its action; any other event is a ``CloudEvent`` for its type.
    """

    is_http = False

    def __init__(self, app: App) -> None:
        self.app = app

    def matches(self, raw: Any) -> bool:
        return _eventgrid.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Event | Batch:
        cloud = _eventgrid.read(_invoke.expect(raw, self.matches, "Event Grid event"), context)
        change = _eventgrid.storage_change(cloud)
        if change is not None:
            logical = names.get(change.bucket, change.bucket)
            reg = self.app.find(Trigger.STORAGE, logical, change.action.value)
            if reg is not None:
                if change.action is StorageAction.CREATED and _settings.has_blob_trigger(reg):
                    # The blob trigger delivers this creation; handling it here too would
                    # run the handler twice for one blob. Nothing to run: an empty batch.
                    context.logger.info(
                        "blob creation left to the blob trigger",
                        container=change.bucket,
                        key=change.key,
                    )
                    return Batch(Trigger.STORAGE, (), (), item_id=str)
                return Event(Trigger.STORAGE, logical, change)
        return Event(Trigger.CLOUDEVENT, cloud.type, cloud)

    def to_native(self, outcome: Any, raw: Any, context: Context) -> None:
        """Nothing: an Event Grid function has no output binding."""
        return None
