"""The parts of the Functions host's Python objects that polyserve reads, as ``Protocol``s.

The worker hands each function ``azure.functions`` objects (``HttpRequest``,
``QueueMessage``, ``ServiceBusMessage``, ...). The converters only read a few
attributes of each, and they never trust them: an attribute typed ``object``
here is checked before use, so a value of the wrong type becomes a
``MalformedEventError`` rather than a ``TypeError``. Typing against these
protocols keeps ``azure.functions`` out of the import graph until the host runs.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "InvocationContext",
    "NativeBlob",
    "NativeCloudEvent",
    "NativeEventGridEvent",
    "NativeEventHubEvent",
    "NativeHttpRequest",
    "NativeKafkaEvent",
    "NativeQueueMessage",
    "NativeServiceBusMessage",
    "NativeTimer",
]


class InvocationContext(Protocol):
    """``azure.functions.Context``: the invocation id and the function's name."""

    @property
    def invocation_id(self) -> object: ...

    @property
    def function_name(self) -> object: ...


class NativeHttpRequest(Protocol):
    """``azure.functions.HttpRequest``: ``url`` is absolute and still percent-encoded."""

    @property
    def method(self) -> object: ...

    @property
    def url(self) -> object: ...

    @property
    def headers(self) -> object: ...

    def get_body(self) -> object: ...


class NativeQueueMessage(Protocol):
    """``azure.functions.QueueMessage`` (Storage Queues)."""

    @property
    def id(self) -> object: ...

    @property
    def dequeue_count(self) -> object: ...

    @property
    def insertion_time(self) -> object: ...

    def get_body(self) -> object: ...


class NativeServiceBusMessage(Protocol):
    """``azure.functions.ServiceBusMessage``."""

    @property
    def message_id(self) -> object: ...

    @property
    def delivery_count(self) -> object: ...

    @property
    def enqueued_time_utc(self) -> object: ...

    @property
    def session_id(self) -> object: ...

    @property
    def subject(self) -> object: ...

    @property
    def label(self) -> object: ...

    @property
    def application_properties(self) -> object: ...

    @property
    def user_properties(self) -> object: ...

    def get_body(self) -> object: ...


class NativeEventHubEvent(Protocol):
    """``azure.functions.EventHubEvent``; ``metadata`` is the trigger metadata, if any."""

    @property
    def sequence_number(self) -> object: ...

    @property
    def partition_key(self) -> object: ...

    @property
    def enqueued_time(self) -> object: ...

    @property
    def metadata(self) -> object: ...

    def get_body(self) -> object: ...


class NativeKafkaEvent(Protocol):
    """``azure.functions.KafkaEvent``: the value as the body, the rest from trigger metadata."""

    @property
    def metadata(self) -> object: ...

    def get_body(self) -> object: ...


class NativeEventGridEvent(Protocol):
    """``azure.functions.EventGridEvent``: an event in the Event Grid schema."""

    @property
    def id(self) -> object: ...

    @property
    def topic(self) -> object: ...

    @property
    def subject(self) -> object: ...

    @property
    def event_type(self) -> object: ...

    @property
    def event_time(self) -> object: ...

    @property
    def data_version(self) -> object: ...

    def get_json(self) -> object: ...


class NativeCloudEvent(Protocol):
    """``azure.functions.CloudEvent``: an event in the CloudEvents 1.0 schema."""

    @property
    def id(self) -> object: ...

    @property
    def source(self) -> object: ...

    @property
    def type(self) -> object: ...

    @property
    def specversion(self) -> object: ...

    @property
    def time(self) -> object: ...

    @property
    def subject(self) -> object: ...

    @property
    def datacontenttype(self) -> object: ...

    @property
    def dataschema(self) -> object: ...

    @property
    def extension_attrs(self) -> object: ...

    def get_json(self) -> object: ...


class NativeBlob(Protocol):
    """``azure.functions.InputStream``: ``name`` is ``"<container>/<blob name>"``."""

    @property
    def name(self) -> object: ...

    @property
    def length(self) -> object: ...

    @property
    def uri(self) -> object: ...

    @property
    def blob_properties(self) -> object: ...


class NativeTimer(Protocol):
    """``azure.functions.TimerRequest``."""

    @property
    def past_due(self) -> object: ...

    @property
    def schedule_status(self) -> object: ...
