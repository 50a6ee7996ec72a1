"""Round trip: what the Cloudflare backend sends, consumed by this adapter, reaches the handler
as the message that was sent (body, attributes and trace).

The bodies are handed to the consumer as the Workers runtime hands them over: a
``bytes`` body as an ``ArrayBuffer``, a ``text`` body as a string, a ``json`` body
as the value the ``workers`` SDK converts it to.
"""

from __future__ import annotations

import asyncio
import string
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyserve import App, Context, Message
from polyserve.outbound import Queue
from polyserve.tracing import TraceContext
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.outbound import CloudflareBackend
from polyserve_cloudflare.testing import (
    FakeBatch,
    FakeBuffer,
    FakeExecutionContext,
    FakeMessage,
    FakeRuntime,
)

SETTINGS = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_payloads = st.one_of(st.binary(max_size=32), st.text(max_size=32), _json)
_attributes = st.dictionaries(
    st.text(string.ascii_lowercase + "-", min_size=1, max_size=8).filter(
        lambda name: name not in ("content-type", "traceparent", "tracestate")
    ),
    st.text(max_size=12),
    max_size=3,
)
_traces = st.none() | st.builds(
    TraceContext,
    st.text("0123456789abcdef", min_size=32, max_size=32).filter(lambda t: t != "0" * 32),
    st.text("0123456789abcdef", min_size=16, max_size=16).filter(lambda s: s != "0" * 16),
    st.booleans(),
)


class Producer:
    """A Queues binding that keeps each entry as the consumer would receive its body."""

    def __init__(self) -> None:
        self.delivered: list[Any] = []

    async def sendBatch(self, entries: list[dict[str, Any]], options: Any = None) -> None:
        for entry in entries:
            body = entry["body"]
            self.delivered.append(FakeBuffer(body) if entry["contentType"] == "bytes" else body)


@SETTINGS
@given(payload=_payloads, attributes=_attributes, trace=_traces)
def test_a_sent_message_reaches_the_handler_as_sent(
    payload: Any, attributes: dict[str, str], trace: TraceContext | None
) -> None:
    producer = Producer()
    backend = CloudflareBackend(SimpleNamespace(ORDERS=producer), runtime=FakeRuntime())
    queue = Queue("orders", backend=backend)
    sent = queue.message(payload, attributes=attributes, trace=trace)
    asyncio.run(queue.send_batch_async([sent]))

    app = App("consumer")
    seen: list[tuple[Message, str | None]] = []

    @app.queue("orders")
    def consume(message: Message, context: Context) -> None:
        seen.append((message, context.trace_id))

    worker = entrypoint(app, runtime=FakeRuntime())(FakeExecutionContext(), {})
    native = FakeMessage("m1", producer.delivered[0])
    asyncio.run(worker.queue(FakeBatch("orders", [native])))

    assert native.settled == "acked"
    ((message, trace_id),) = seen
    assert message.body == sent.body
    is_wrapped = bool(attributes) or trace is not None
    assert dict(message.attributes) == (sent.headers() if is_wrapped else {})
    assert trace_id == (None if trace is None else trace.trace_id)
