"""Sent, then consumed by polyserve's own inbound side: the handler gets an equal typed message.

For any payload, attributes, ordering key and trace: the memory backend through the
local server's delivery, SQS (moto's server) through ``polyserve_aws.handler``,
Pub/Sub (the emulator) through ``polyserve_gcp.cloudevent``, and Storage Queue (Azurite)
through the queue function ``polyserve_azure.function_app`` generates. The message id and the
enqueue time are the transport's; every other field must come out as it went in.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from tests.properties.strategies import outbound_sends

from polyserve import App, Context, Message
from polyserve.local import LocalServer
from polyserve.outbound import MemoryBackend, Queue
from polyserve.outbound.message import encode_payload

if TYPE_CHECKING:
    import pytest
    from tests.support.servers import AzuriteServer, GcloudEmulator, MotoServer

_NETWORK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _expected(
    send: dict[str, Any], got: Message, group_key: str | None, source: str = "orders"
) -> Message:
    body, content_type = encode_payload(send["payload"])
    attributes = {**send["attributes"], "content-type": content_type}
    if send["trace"] is not None:
        attributes["traceparent"] = send["trace"].traceparent
    return Message(
        id=got.id,
        body=body,
        attributes=attributes,
        attempt=1,
        enqueued_at=got.enqueued_at,
        source=source,
        group_key=group_key,
    )


def _consumer(name: str = "orders") -> tuple[App, list[tuple[Message, str | None]]]:
    app = App("roundtrip")
    seen: list[tuple[Message, str | None]] = []

    @app.queue(name)
    def consume(message: Message, context: Context) -> None:
        seen.append((message, context.trace.trace_id if context.trace else None))

    return app, seen


def _send(queue: Queue, send: dict[str, Any], **extra: Any) -> None:
    queue.send(
        send["payload"],
        attributes=send["attributes"],
        key=send["key"],
        trace=send["trace"],
        **extra,
    )


@settings(max_examples=80, deadline=None)
@given(outbound_sends())
def test_memory_backend_through_the_local_server(send: dict[str, Any]) -> None:
    backend = MemoryBackend()
    app, seen = _consumer()
    server = LocalServer(app, outbound=backend)
    _send(Queue("orders", backend=backend), send)
    asyncio.run(server.deliver_due())
    server.close_outbound()
    ((got, trace_id),) = seen
    assert got == _expected(send, got, send["key"])
    if send["trace"] is not None:
        assert trace_id == send["trace"].trace_id


def test_sqs_fifo_through_the_lambda_handler(moto_server: MotoServer) -> None:
    import polyserve_aws
    from polyserve_aws.outbound import AwsBackend
    from polyserve_aws.testing import LambdaContext

    backend = AwsBackend(**moto_server.client_options)
    sqs = backend.client("sqs")
    url = sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = f"arn:aws:sqs:{moto_server.region}:{moto_server.account}:orders.fifo"
    queue = Queue("orders", target=url, backend=backend)

    # SQS carries text: a bytes payload that is not UTF-8 would arrive base64-encoded.
    @_NETWORK
    @given(outbound_sends(binary=False))
    def check(send: dict[str, Any]) -> None:
        app, seen = _consumer("orders.fifo")
        _send(queue, send, dedup_id=uuid.uuid4().hex)
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"], WaitTimeSeconds=1,
        )  # fmt: skip
        (received,) = answer["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])
        record = {
            "messageId": received["MessageId"],
            "receiptHandle": received["ReceiptHandle"],
            "body": received["Body"],
            "attributes": received.get("Attributes", {}),
            "messageAttributes": {
                k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                for k, v in received.get("MessageAttributes", {}).items()
            },
            "md5OfBody": received["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": moto_server.region,
        }
        out = polyserve_aws.handler(app)({"Records": [record]}, LambdaContext("rt"))
        assert out == {"batchItemFailures": []}
        ((got, _),) = seen
        # A FIFO message always has a group: the key, else the backend's default one.
        assert got == _expected(send, got, send["key"] or "default", "orders.fifo")

    check()


def test_pubsub_through_the_cloudevent_handler(
    pubsub_emulator: GcloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudevents.http import CloudEvent
    from google.pubsub_v1 import SubscriberClient

    import polyserve_gcp
    from polyserve_gcp.outbound import GcpBackend

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.address)
    project = pubsub_emulator.project_id
    topic_id = f"orders-{uuid.uuid4().hex[:8]}"
    topic = f"projects/{project}/topics/{topic_id}"
    subscription = f"projects/{project}/subscriptions/{topic_id}"
    backend = GcpBackend()
    backend.publisher().create_topic(name=topic)
    subscriber = SubscriberClient()
    subscriber.create_subscription(name=subscription, topic=topic)
    queue = Queue("orders", target=topic, backend=backend)

    @_NETWORK
    @given(outbound_sends())
    def check(send: dict[str, Any]) -> None:
        app, seen = _consumer()
        _send(queue, send)
        pulled = subscriber.pull(subscription=subscription, max_messages=1, timeout=10)
        (received,) = pulled.received_messages
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
        message = received.message
        # proto-plus gives a DatetimeWithNanoseconds; the protobuf stubs say Timestamp.
        published = message.publish_time.rfc3339()  # type: ignore[attr-defined]
        data: dict[str, Any] = {
            "message": {
                "data": base64.b64encode(message.data).decode(),
                "attributes": dict(message.attributes),
                "messageId": message.message_id,
                "publishTime": published,
                "orderingKey": message.ordering_key,
            },
            "subscription": subscription,
        }
        event = CloudEvent(
            {
                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": f"//pubsub.googleapis.com/{topic}",
                "id": message.message_id,
                "time": published,
            },
            data,
        )
        polyserve_gcp.cloudevent(app, names={topic_id: "orders"})(event)
        ((got, trace_id),) = seen
        assert got == _expected(send, got, send["key"])
        if send["trace"] is not None:
            assert trace_id == send["trace"].trace_id

    check()


def test_storage_queue_through_the_azure_queue_trigger(azurite: AzuriteServer) -> None:
    from azure.storage.queue import QueueServiceClient
    from tests.support.azure_queue_host import QueueHost

    import polyserve_azure
    from polyserve_azure.outbound import AzureBackend

    settings_ = {"AzureWebJobsStorage": azurite.connection_string}
    name = f"orders-{uuid.uuid4().hex[:8]}"
    with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_queue(name)
    backend = AzureBackend(settings=settings_)
    queue = Queue("orders", target=name, backend=backend)

    @_NETWORK
    @given(outbound_sends())
    def check(send: dict[str, Any]) -> None:
        app, seen = _consumer(name)
        _send(queue, send)
        with QueueHost(polyserve_azure.function_app(app), settings_) as host:
            host.run_until_empty(10)
        ((got, trace_id),) = seen
        # A Storage Queue has no ordering key: the key is not carried.
        assert got == _expected(send, got, None, name)
        if send["trace"] is not None:
            assert trace_id == send["trace"].trace_id

    check()
    backend.close()
