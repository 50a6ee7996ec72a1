"""AWS outbound against moto's server: SQS (standard, FIFO), SNS, EventBridge and S3.

Each queue round trip goes publish → receive → the Lambda event the SQS poller would
build → ``polyserve_aws.handler``, so the consumer is the project's own inbound adapter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext

import polyserve_aws
from polyserve import App, CloudEvent, Context
from polyserve.errors import ConfigurationError
from polyserve.events.queue import Message  # noqa: TC001 (the handler's hints are read at run time)
from polyserve.outbound import (
    BatchPublishError,
    Bucket,
    MessageTooLargeError,
    ObjectNotFoundError,
    Queue,
    Topic,
)
from polyserve.tracing import TraceContext
from polyserve_aws.outbound import AwsBackend

if TYPE_CHECKING:
    from polyserve_testkit.servers import MotoServer

TRACE = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)


@pytest.fixture
def backend(moto_server: MotoServer) -> AwsBackend:
    return AwsBackend(**moto_server.client_options)


def _lambda_event(server: MotoServer, url: str, received: list[Any]) -> dict[str, Any]:
    name = url.rsplit("/", 1)[1]
    arn = f"arn:aws:sqs:{server.region}:{server.account}:{name}"
    records = []
    for m in received:
        attributes = {
            k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
            for k, v in m.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": attributes,
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": server.region,
            }
        )
    return {"Records": records}


def _receive(backend: AwsBackend, url: str, count: int) -> list[Any]:
    sqs = backend.client("sqs")
    out: list[Any] = []
    while len(out) < count:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            WaitTimeSeconds=1,
        )
        got = answer.get("Messages", [])
        assert got, f"only {len(out)} of {count} messages arrived"
        out.extend(got)
        # Deleted as the poller would after the batch: a FIFO group's next messages
        # are held back while earlier ones are in flight.
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )
    return out


@pytest.mark.parametrize("fifo", [False, True])
def test_sqs_round_trip_through_the_lambda_handler(
    moto_server: MotoServer, backend: AwsBackend, fifo: bool
) -> None:
    name = "orders.fifo" if fifo else "orders"
    extra = {"FifoQueue": "true"} if fifo else {}
    url = backend.client("sqs").create_queue(QueueName=name, Attributes=extra)["QueueUrl"]
    queue = Queue(name, target=url, backend=backend)
    ids = queue.send_batch(
        queue.message(
            {"n": i}, attributes={"kind": "created"}, key="c-1", dedup_id=f"d{i}", trace=TRACE
        )
        for i in range(12)
    )
    assert len(set(ids)) == 12
    app = App("shop")
    seen: list[tuple[Any, str, str | None, str | None]] = []

    @app.queue(name)
    def consume(message: Message, context: Context) -> None:
        seen.append(
            (
                message.json(),
                message.attributes.get("kind", ""),
                message.group_key,
                context.trace_id,
            )
        )

    received = _receive(backend, url, 12)
    out = polyserve_aws.handler(app)(_lambda_event(moto_server, url, received), FakeLambdaContext())
    assert out == {"batchItemFailures": []}
    assert sorted(s[0]["n"] for s in seen) == list(range(12))
    assert {s[1] for s in seen} == {"created"}
    # The trace travels as a traceparent attribute (and as AWSTraceHeader, which
    # moto's server does not echo back), and each record's handler continues it.
    assert {m["MessageAttributes"]["traceparent"]["StringValue"] for m in received} == {
        TRACE.traceparent
    }
    assert {s[3] for s in seen} == {TRACE.trace_id}
    if fifo:
        assert [s[0]["n"] for s in seen] == list(range(12))
        assert {s[2] for s in seen} == {"c-1"}


BINARY = [b"\x00\xff\xfe\x80 not UTF-8", "NUL \x00 and U+FFFF \uffff".encode(), b"plain"]


def test_sqs_binary_payloads_reach_the_consumer_as_the_same_bytes(
    moto_server: MotoServer, backend: AwsBackend
) -> None:
    url = backend.client("sqs").create_queue(QueueName="blobs")["QueueUrl"]
    queue = Queue("blobs", target=url, backend=backend)
    for payload in BINARY:
        queue.send(payload, attributes={"kind": "blob"}, trace=TRACE)
    received = _receive(backend, url, len(BINARY))
    # Bytes SQS cannot carry as text travel base64-encoded, marked by an attribute.
    marked = [m for m in received if "content-transfer-encoding" in m["MessageAttributes"]]
    assert len(marked) == 2
    app = App("blobs")
    seen: list[tuple[Message, str | None]] = []

    @app.queue("blobs")
    def consume(message: Message, context: Context) -> None:
        seen.append((message, context.trace_id))

    event = _lambda_event(moto_server, url, received)
    assert polyserve_aws.handler(app)(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert sorted(m.body for m, _ in seen) == sorted(BINARY)
    for message, trace_id in seen:
        assert message.attributes == {
            "kind": "blob",
            "content-type": "application/octet-stream",
            "traceparent": TRACE.traceparent,
        }
        assert trace_id == TRACE.trace_id


def test_sns_notification_carries_trace_and_bytes_to_the_lambda_handler(
    moto_server: MotoServer, backend: AwsBackend
) -> None:
    """SNS → an SQS subscription without raw delivery, whose body is the notification
    Lambda gets as ``Records[0].Sns`` → ``polyserve_aws.handler``."""
    arn = backend.client("sns").create_topic(Name="alerts")["TopicArn"]
    url = backend.client("sqs").create_queue(QueueName="alerts-sub")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:{moto_server.region}:{moto_server.account}:alerts-sub"
    backend.client("sns").subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    topic = Topic("alerts", target=arn, backend=backend)
    for payload in BINARY:
        topic.publish(payload, attributes={"kind": "blob"}, trace=TRACE)
    app = App("alerts")
    seen: list[tuple[bytes, dict[str, str], str | None]] = []

    @app.topic("alerts")
    def alert(message: Message, context: Context) -> None:
        seen.append((message.body, dict(message.attributes), context.trace_id))

    for received in _receive(backend, url, len(BINARY)):
        notification = json.loads(received["Body"])
        record = {"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": notification}
        polyserve_aws.handler(app)({"Records": [record]}, FakeLambdaContext())
    assert sorted(body for body, _, _ in seen) == sorted(BINARY)
    for _, attributes, trace_id in seen:
        assert attributes == {
            "kind": "blob",
            "content-type": "application/octet-stream",
            "traceparent": TRACE.traceparent,
        }
        assert trace_id == TRACE.trace_id


def test_sqs_size_counts_attributes_and_base64(backend: AwsBackend) -> None:
    url = backend.client("sqs").create_queue(QueueName="counted")["QueueUrl"]
    queue = Queue("counted", target=url, backend=backend)
    limit = 1024 * 1024
    with pytest.raises(MessageTooLargeError, match="SQS's limit"):
        queue.send("x" * (limit - 200), attributes={"note": "y" * 300})
    with pytest.raises(MessageTooLargeError, match="SQS's limit"):  # 1 MiB once in base64
        queue.send(b"\xff" * (limit * 3 // 4 + 10))


CLOUDEVENTS = [
    CloudEvent(
        id="e1", source="/shop", type="order.created", data={"id": 1, "total": 9.5},
        datacontenttype="application/json", subject="orders/1",
        time=dt.datetime(2026, 3, 1, 12, 30, 5, 123000, tzinfo=dt.timezone.utc),
        extensions={"tenant": "t1"},
    ),
    CloudEvent(id="e2", source="/shop", type="thumb.made", data=b"\x00\xff\xd8jpeg"),
    CloudEvent(id="e3", source="/shop", type="note", data="caf\u00e9", datacontenttype="text/plain"),
]  # fmt: skip


def test_a_cloudevent_on_sqs_is_structured_json_and_reads_back_equal(
    moto_server: MotoServer, backend: AwsBackend
) -> None:
    url = backend.client("sqs").create_queue(QueueName="ce")["QueueUrl"]
    queue = Queue("ce", target=url, backend=backend)
    for event in CLOUDEVENTS:
        queue.send(event, trace=TRACE)
    received = _receive(backend, url, len(CLOUDEVENTS))
    first = next(m for m in received if '"e1"' in m["Body"])
    assert json.loads(first["Body"])["data"] == {"id": 1, "total": 9.5}
    assert first["MessageAttributes"]["content-type"]["StringValue"] == (
        "application/cloudevents+json; charset=utf-8"
    )
    app = App("ce")
    seen: list[tuple[CloudEvent, str | None]] = []

    @app.queue("ce")
    def consume(event: CloudEvent, context: Context) -> None:
        seen.append((event, context.trace_id))

    batch = _lambda_event(moto_server, url, received)
    assert polyserve_aws.handler(app)(batch, FakeLambdaContext()) == {"batchItemFailures": []}
    assert sorted((e for e, _ in seen), key=lambda e: e.id) == CLOUDEVENTS
    assert {trace_id for _, trace_id in seen} == {TRACE.trace_id}


def test_a_cloudevent_on_eventbridge_is_the_detail_and_reads_back_equal(
    moto_server: MotoServer, backend: AwsBackend
) -> None:
    """PutEvents → a rule with an SQS target (the envelope as the body) → the Lambda
    handler: ``@app.cloudevent(type)`` gets the event, its handler continues the trace."""
    events = backend.client("events")
    events.create_event_bus(Name="shop")
    url = backend.client("sqs").create_queue(QueueName="bus-target")["QueueUrl"]
    events.put_rule(Name="all", EventBusName="shop", EventPattern=json.dumps({"source": ["/shop"]}))
    target = f"arn:aws:sqs:{moto_server.region}:{moto_server.account}:bus-target"
    events.put_targets(Rule="all", EventBusName="shop", Targets=[{"Id": "q", "Arn": target}])
    topic = Topic("shop", target="events:shop", backend=backend)
    for event in CLOUDEVENTS:
        topic.publish(event, trace=TRACE)
    app = App("bus")
    seen: list[tuple[CloudEvent, str | None]] = []

    @app.cloudevent("*")
    def on_event(event: CloudEvent, context: Context) -> None:
        seen.append((event, context.trace_id))

    for received in _receive(backend, url, len(CLOUDEVENTS)):
        envelope = json.loads(received["Body"])
        assert envelope["source"] == "/shop"
        polyserve_aws.handler(app)(envelope, FakeLambdaContext())
    # The trace rides in the event as the distributed-tracing extension.
    assert sorted((e for e, _ in seen), key=lambda e: e.id) == [
        dataclasses.replace(e, extensions={**e.extensions, "traceparent": TRACE.traceparent})
        for e in CLOUDEVENTS
    ]
    assert {trace_id for _, trace_id in seen} == {TRACE.trace_id}


def test_sqs_limit_is_checked_before_sending(backend: AwsBackend) -> None:
    url = backend.client("sqs").create_queue(QueueName="big")["QueueUrl"]
    queue = Queue("big", target=url, backend=backend)
    queue.send("x" * (1024 * 1024 - 2048))  # under the 1 MiB limit: accepted
    with pytest.raises(MessageTooLargeError, match="SQS's limit of 1048576 bytes"):
        queue.send(b"x" * (1024 * 1024 + 1))


def test_missing_queue_is_a_configuration_error(
    moto_server: MotoServer, backend: AwsBackend
) -> None:
    url = f"{moto_server.endpoint_url}/{moto_server.account}/nowhere"
    with pytest.raises(ConfigurationError, match="nowhere"):
        Queue("nowhere", target=url, backend=backend).send("x")


def test_partial_sqs_batch_failure_names_exactly_the_failed_messages(backend: AwsBackend) -> None:
    url = backend.client("sqs").create_queue(QueueName="partial")["QueueUrl"]
    queue = Queue("partial", target=url, backend=backend, sleep=lambda _: None)
    bad = queue.message("bad", attributes={"": "an empty attribute name is refused"})
    # SQS refuses the whole call holding the bad entry: the first ten are sent, the
    # second call (the bad message and the one beside it) fails, and both are reported.
    with pytest.raises(BatchPublishError) as caught:
        queue.send_batch([*(str(i) for i in range(10)), "x", bad])
    assert [(f.index, f.message.body) for f in caught.value.failures] == [(10, b"x"), (11, b"bad")]
    assert caught.value.sent == 10
    assert "InvalidParameterValue" in str(caught.value.failures[1].error)


def test_sns_publish_reaches_a_subscribed_queue(backend: AwsBackend) -> None:
    arn = backend.client("sns").create_topic(Name="events")["TopicArn"]
    url = backend.client("sqs").create_queue(QueueName="events-sub")["QueueUrl"]
    queue_arn = url.replace("http://", "").split("/")  # moto accepts the queue's ARN form
    sub_arn = f"arn:aws:sqs:us-east-1:{queue_arn[-2]}:{queue_arn[-1]}"
    backend.client("sns").subscribe(
        TopicArn=arn, Protocol="sqs", Endpoint=sub_arn, Attributes={"RawMessageDelivery": "true"}
    )
    topic = Topic("events", target=arn, backend=backend)
    topic.publish({"id": 7}, attributes={"kind": "created"})
    (received,) = _receive(backend, url, 1)
    assert json.loads(received["Body"]) == {"id": 7}
    assert received["MessageAttributes"]["kind"]["StringValue"] == "created"


def test_eventbridge_put_events(backend: AwsBackend) -> None:
    backend.client("events").create_event_bus(Name="bus")
    topic = Topic("bus", target="events:bus", backend=backend)
    ids = topic.send_batch(
        [topic.message({"n": i}, attributes={"type": "order"}) for i in range(11)]
    )
    assert len(set(ids)) == 11


def test_s3_objects(backend: AwsBackend) -> None:
    backend.client("s3").create_bucket(Bucket="thumbs")
    bucket = Bucket("thumbs", target="thumbs", backend=backend)
    bucket.put("t/a.jpg", b"\xff\xd8jpeg", content_type="image/jpeg", metadata={"w": "10"})
    bucket.put("t/b.json", {"k": 1})
    assert bucket.get("t/a.jpg") == b"\xff\xd8jpeg"
    assert b"".join(bucket.open("t/b.json", chunk_size=2)) == b'{"k":1}'
    assert list(bucket.list("t/")) == ["t/a.jpg", "t/b.json"]
    head = backend.client("s3").head_object(Bucket="thumbs", Key="t/a.jpg")
    assert (head["ContentType"], head["Metadata"]) == ("image/jpeg", {"w": "10"})
    import urllib.request

    with urllib.request.urlopen(bucket.url("t/a.jpg", expires=60)) as answer:
        assert answer.read() == b"\xff\xd8jpeg"
    bucket.delete("t/a.jpg")
    with pytest.raises(ObjectNotFoundError):
        bucket.get("t/a.jpg")


def test_importing_the_backend_loads_no_sdk() -> None:
    code = (
        "import sys, polyserve_aws.outbound, polyserve.outbound;"
        "print([m for m in ('boto3', 'botocore') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
