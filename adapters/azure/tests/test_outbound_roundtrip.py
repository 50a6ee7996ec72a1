"""Property: whatever is sent on Azure reaches a polyserve handler on Azure unchanged.

Storage Queue: any body and attributes, sent through ``AzureBackend`` to Azurite, then
received, base64-decoded and handed to the generated queue function by ``QueueHost``
(the Functions host's queue trigger). Event Grid (CloudEvents schema): any JSON, text or
bytes data, posted to a loopback topic, then delivered to the generated Event Grid
function through the worker's converter.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from adapters.azure.tests.test_outbound_messaging import GridServer, _deliver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyserve_azure
from polyserve import App, CloudEvent, Context
from polyserve.events.queue import Message  # noqa: TC001 (the handler's hints are read at run time)
from polyserve.outbound import Queue, Topic
from polyserve.tracing import TraceContext
from polyserve_azure.outbound import AzureBackend

if TYPE_CHECKING:
    from polyserve_testkit.servers import AzuriteServer

TRACE = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
attributes = st.dictionaries(names, st.text(max_size=20), max_size=4)
payloads = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.dictionaries(names, st.one_of(st.integers(), st.text(max_size=10), st.booleans())),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=payloads, sent_attributes=attributes, traced=st.booleans())
def test_storage_queue_messages_arrive_unchanged(
    azurite: AzuriteServer, payload: Any, sent_attributes: dict[str, str], traced: bool
) -> None:
    from azure.storage.queue import QueueServiceClient

    from polyserve_testkit.azure_queue_host import QueueHost

    name = f"prop-{uuid.uuid4().hex[:12]}"
    settings_ = {"AzureWebJobsStorage": azurite.connection_string}
    with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_queue(name)
    backend = AzureBackend(settings=settings_)
    queue = Queue(name, backend=backend)
    message = queue.message(payload, attributes=sent_attributes, trace=TRACE if traced else None)
    queue.send_batch([message])
    app = App("prop")
    seen: list[tuple[bytes, dict[str, str], str | None]] = []

    @app.queue(name)
    def consume(received: Message, context: Context) -> None:
        seen.append((received.body, dict(received.attributes), context.trace_id))

    with QueueHost(polyserve_azure.function_app(app), settings_) as host:
        host.run_until_empty(10)
    backend.close()
    assert seen == [(message.body, message.headers(), TRACE.trace_id if traced else None)]


@pytest.fixture(scope="module")
def grid() -> Any:
    server = GridServer()
    yield server
    server.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(json_values, st.binary(max_size=200), st.text(max_size=200)))
def test_cloudevents_data_arrives_unchanged(grid: GridServer, data: Any) -> None:
    backend = AzureBackend(settings={"POLYSERVE_EVENTGRID_KEY": "k"})
    topic = Topic("t", target="cloudevents:" + grid.endpoint, backend=backend)
    before = len(grid.requests)
    topic.publish(data, attributes={"type": "prop.event"}, trace=TRACE)
    (event,) = grid.requests[before].json()
    app = App("prop")
    seen: list[tuple[CloudEvent, str | None]] = []

    @app.cloudevent("prop.event")
    def on_event(received: CloudEvent, context: Context) -> None:
        seen.append((received, context.trace_id))

    _deliver(app, event)
    ((received, trace_id),) = seen
    assert trace_id == TRACE.trace_id
    if isinstance(data, (bytes, str)):
        assert received.data == data
    else:
        assert received.json() == data
