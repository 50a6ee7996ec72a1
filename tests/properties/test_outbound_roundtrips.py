"""Sent, then consumed by polyserve's own inbound side: the handler gets an equal typed message.

For any payload (bytes included), attributes, ordering key and trace: the memory backend
through the local server's delivery, SQS (moto's server) through ``polyserve_aws.handler``,
Pub/Sub (the emulator) through ``polyserve_gcp.cloudevent``, and Storage Queue (Azurite)
through the queue function ``polyserve_azure.function_app`` generates. The message id and the
enqueue time are the transport's; every other field must come out as it went in, and the
consumer's ``Context.trace_id`` continues the producer's trace.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings

from polyserve import App, CloudEvent, Context, Message
from polyserve.local import LocalServer
from polyserve.outbound import MemoryBackend, Queue, Topic
from polyserve.outbound.message import encode_payload
from polyserve.tracing import TraceContext
from polyserve_testkit.strategies import cloudevents, outbound_sends

if TYPE_CHECKING:
    import pytest

    from polyserve_testkit.servers import AzuriteServer, GcloudEmulator, MotoServer

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

    # SQS carries text: bytes it cannot carry travel base64-encoded, marked by an
    # attribute the Lambda adapter honours, so the consumer gets the same bytes.
    @_NETWORK
    @given(outbound_sends())
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
        ((got, trace_id),) = seen
        # A FIFO message always has a group: the key, else the backend's default one.
        assert got == _expected(send, got, send["key"] or "default", "orders.fifo")
        if send["trace"] is not None:
            assert trace_id == send["trace"].trace_id

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

    import polyserve_azure
    from polyserve_azure.outbound import AzureBackend
    from polyserve_testkit.azure_queue_host import QueueHost

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


# -- CloudEvents: published on each cloud, read back equal by a handler that takes one --


def _event_consumer(name: str) -> tuple[App, list[tuple[CloudEvent, str | None]]]:
    app = App("cloudevents")
    seen: list[tuple[CloudEvent, str | None]] = []

    @app.topic(name)
    @app.queue(name)
    def consume(event: CloudEvent, context: Context) -> None:
        seen.append((event, context.trace_id))

    return app, seen


_TRACE = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)


@settings(max_examples=80, deadline=None)
@given(cloudevents())
def test_cloudevent_through_the_memory_backend_and_local_server(event: CloudEvent) -> None:
    backend = MemoryBackend()
    app, seen = _event_consumer("events")
    server = LocalServer(app, outbound=backend)
    Topic("events", backend=backend).publish(event, trace=_TRACE)
    asyncio.run(server.deliver_due())
    server.close_outbound()
    assert seen == [(event, _TRACE.trace_id)]


def test_cloudevent_on_sqs_through_the_lambda_handler(moto_server: MotoServer) -> None:
    import polyserve_aws
    from polyserve_aws.outbound import AwsBackend
    from polyserve_aws.testing import LambdaContext

    backend = AwsBackend(**moto_server.client_options)
    sqs = backend.client("sqs")
    url = sqs.create_queue(QueueName="cloudevents")["QueueUrl"]
    arn = f"arn:aws:sqs:{moto_server.region}:{moto_server.account}:cloudevents"
    queue = Queue("events", target=url, backend=backend)

    @_NETWORK
    @given(cloudevents())
    def check(event: CloudEvent) -> None:
        app, seen = _event_consumer("cloudevents")
        queue.send(event, trace=_TRACE)
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        )  # fmt: skip
        (received,) = answer["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])
        record = {
            "messageId": received["MessageId"],
            "receiptHandle": received["ReceiptHandle"],
            "body": received["Body"],
            "attributes": {},
            "messageAttributes": {
                k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                for k, v in received.get("MessageAttributes", {}).items()
            },
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": moto_server.region,
        }
        out = polyserve_aws.handler(app)({"Records": [record]}, LambdaContext("ce"))
        assert out == {"batchItemFailures": []}
        assert seen == [(event, _TRACE.trace_id)]

    check()


def test_cloudevent_on_pubsub_in_binary_mode_through_the_cloudevent_handler(
    pubsub_emulator: GcloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudevents.http import CloudEvent as SdkCloudEvent
    from google.pubsub_v1 import SubscriberClient

    import polyserve_gcp
    from polyserve_gcp.outbound import GcpBackend

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.address)
    project = pubsub_emulator.project_id
    topic_id = f"events-{uuid.uuid4().hex[:8]}"
    topic_path = f"projects/{project}/topics/{topic_id}"
    subscription = f"projects/{project}/subscriptions/{topic_id}"
    backend = GcpBackend()
    backend.publisher().create_topic(name=topic_path)
    subscriber = SubscriberClient()
    subscriber.create_subscription(name=subscription, topic=topic_path)
    topic = Topic("events", target=topic_path, backend=backend)

    @_NETWORK
    @given(cloudevents())
    def check(event: CloudEvent) -> None:
        app, seen = _event_consumer("events")
        topic.publish(event, trace=_TRACE)
        pulled = subscriber.pull(subscription=subscription, max_messages=1, timeout=10)
        (received,) = pulled.received_messages
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id])
        message = received.message
        assert message.attributes["ce-id"] == event.id  # binary mode
        # proto-plus gives a DatetimeWithNanoseconds; the protobuf stubs say Timestamp.
        published = message.publish_time.rfc3339()  # type: ignore[attr-defined]
        data: dict[str, Any] = {
            "message": {
                "data": base64.b64encode(message.data).decode(),
                "attributes": dict(message.attributes),
                "messageId": message.message_id,
                "publishTime": published,
            },
            "subscription": subscription,
        }
        delivered = SdkCloudEvent(
            {
                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": f"//pubsub.googleapis.com/{topic_path}",
                "id": message.message_id,
                "time": published,
            },
            data,
        )
        polyserve_gcp.cloudevent(app, names={topic_id: "events"})(delivered)
        assert seen == [(event, _TRACE.trace_id)]

    check()


def test_cloudevent_on_eventbridge_through_the_lambda_handler(moto_server: MotoServer) -> None:
    """PutEvents → a rule's SQS target (the envelope as the body) → ``polyserve_aws.handler``:
    the event, with the producer's trace as its ``traceparent`` extension."""
    import dataclasses
    import json

    import polyserve_aws
    from polyserve_aws.outbound import AwsBackend
    from polyserve_aws.testing import LambdaContext

    backend = AwsBackend(**moto_server.client_options)
    events, sqs = backend.client("events"), backend.client("sqs")
    events.create_event_bus(Name="roundtrip")
    url = sqs.create_queue(QueueName="roundtrip-target")["QueueUrl"]
    events.put_rule(
        Name="every", EventBusName="roundtrip", EventPattern='{"account": [{"exists": true}]}'
    )
    arn = f"arn:aws:sqs:{moto_server.region}:{moto_server.account}:roundtrip-target"
    events.put_targets(Rule="every", EventBusName="roundtrip", Targets=[{"Id": "q", "Arn": arn}])
    topic = Topic("bus", target="events:roundtrip", backend=backend)

    @_NETWORK
    @given(cloudevents(plain_names=True))
    def check(event: CloudEvent) -> None:
        app = App("bus")
        seen: list[tuple[CloudEvent, str | None]] = []

        @app.cloudevent("*")
        def on_event(got: CloudEvent, context: Context) -> None:
            seen.append((got, context.trace_id))

        topic.publish(event, trace=_TRACE)
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        (received,) = answer["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])
        polyserve_aws.handler(app)(json.loads(received["Body"]), LambdaContext("bus"))
        traced = {**event.extensions, "traceparent": _TRACE.traceparent}
        assert seen == [(dataclasses.replace(event, extensions=traced), _TRACE.trace_id)]

    check()
