"""Native AWS events for tests: ``build("sqs", body="{}")`` or ``BUILDERS[kind](**overrides)``.

Each builder returns the JSON document the AWS service hands Lambda, with sensible
defaults; keyword overrides replace the defaults named in the builder's signature.
An unknown override raises ``TypeError`` naming the builder's keywords, so a typo
fails the test rather than building a different event.
"""

from __future__ import annotations

import base64
import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from polyserve.app import App

__all__ = ["BUILDERS", "ClientTransport", "LambdaContext", "build", "client_transport"]

_ACCOUNT = "123456789012"
_REGION = "us-east-1"
_TIME = "2024-05-01T10:00:00Z"
_EPOCH_MS = 1714557600000


class LambdaContext:
    """The Lambda context object, as far as polyserve reads it."""

    def __init__(self, aws_request_id: str = "req-1", function_name: str = "app") -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = "128"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _text(body: str | bytes | dict[str, Any] | list[Any] | None) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    if isinstance(body, (dict, list)):
        return json.dumps(body), False
    if isinstance(body, bytes):
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            return base64.b64encode(body).decode(), True
    return body, False


def _headers(headers: dict[str, str] | None, body: object) -> dict[str, str]:
    out = {k.lower(): v for k, v in (headers or {}).items()}
    if isinstance(body, (dict, list)):
        out.setdefault("content-type", "application/json")
    return out


def http_api(
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
    source_ip: str | None = "203.0.113.7",
    request_id: str = "req-1",
    domain: str = "p8w2m1.execute-api.us-east-1.amazonaws.com",
) -> dict[str, Any]:
    """An API Gateway HTTP API request (payload format 2.0)."""
    text, b64 = _text(body)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": _headers(headers, body),
        "requestContext": {
            "accountId": _ACCOUNT,
            "apiId": domain.split(".", 1)[0],
            "domainName": domain,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "polyserve-test",
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": _EPOCH_MS,
        },
        "isBase64Encoded": b64,
    }
    if cookies:
        event["cookies"] = list(cookies)
    if text is not None:
        event["body"] = text
    return event


def function_url(**overrides: Any) -> dict[str, Any]:
    """A Lambda Function URL request (payload format 2.0, a ``lambda-url`` domain)."""
    overrides.setdefault("domain", "x7a2b9c4d5e6f.lambda-url.us-east-1.on.aws")
    return _call(http_api, overrides)


def rest_api(
    method: str = "GET",
    path: str = "/",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
    source_ip: str = "203.0.113.7",
    request_id: str = "req-1",
) -> dict[str, Any]:
    """An API Gateway REST API request (payload format 1.0, proxy integration)."""
    text, b64 = _text(body)
    hdrs = _headers(headers, body)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method.upper(),
        "headers": hdrs or None,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()} or None,
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": _ACCOUNT,
            "apiId": "a1b2c3d4e5",
            "httpMethod": method.upper(),
            "path": "/prod" + path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTimeEpoch": _EPOCH_MS,
            "resourcePath": "/{proxy+}",
            "stage": "prod",
            "identity": {"sourceIp": source_ip, "userAgent": "polyserve-test"},
        },
        "body": text,
        "isBase64Encoded": b64,
    }


def alb(
    method: str = "GET",
    path: str = "/",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
) -> dict[str, Any]:
    """An Application Load Balancer target group request (single-value headers)."""
    text, b64 = _text(body)
    return {
        "requestContext": {
            "elb": {
                "targetGroupArn": f"arn:aws:elasticloadbalancing:{_REGION}:{_ACCOUNT}:"
                "targetgroup/app/0123456789abcdef"
            }
        },
        "httpMethod": method.upper(),
        "path": path,
        "queryStringParameters": dict(query or {}),
        "headers": _headers(headers, body),
        "body": text or "",
        "isBase64Encoded": b64,
    }


def sqs(
    body: str | bytes | dict[str, Any] | list[Any] = "",
    queue: str = "orders",
    message_id: str = "msg-1",
    attempt: int = 1,
    attributes: dict[str, str] | None = None,
    group_id: str | None = None,
    sent_timestamp: int = _EPOCH_MS,
) -> dict[str, Any]:
    """An SQS batch of one message; ``group_id`` (or a ``.fifo`` queue) makes it FIFO.

    ``sent_timestamp`` is when the message was sent, in milliseconds since the epoch.
    A ``bytes`` body that is not UTF-8 is sent base64-encoded and marked with the
    ``content-transfer-encoding: base64`` attribute, as ``polyserve_aws.outbound`` sends it.
    """
    text, encoded = _text(body)
    if encoded:
        attributes = {**(attributes or {}), "content-transfer-encoding": "base64"}
    attrs = {
        "ApproximateReceiveCount": str(attempt),
        "SentTimestamp": str(sent_timestamp),
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": str(sent_timestamp),
    }
    if group_id is not None or queue.endswith(".fifo"):
        attrs |= {"MessageGroupId": group_id or "group-1", "MessageDeduplicationId": message_id}
        attrs["SequenceNumber"] = "18849496460467696128"
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": "handle-" + message_id,
                "body": text or "",
                "attributes": attrs,
                "messageAttributes": {
                    k: {"stringValue": v, "dataType": "String"}
                    for k, v in (attributes or {}).items()
                },
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{_REGION}:{_ACCOUNT}:{queue}",
                "awsRegion": _REGION,
            }
        ]
    }


def sqs_fifo(**overrides: Any) -> dict[str, Any]:
    """An SQS FIFO batch of one message (queue ``orders.fifo``, group ``group-1``)."""
    overrides.setdefault("queue", "orders.fifo")
    overrides.setdefault("group_id", "group-1")
    return _call(sqs, overrides)


def sns(
    message: str | bytes | dict[str, Any] | list[Any] = "",
    topic: str = "alerts",
    message_id: str = "sns-1",
    subject: str | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An SNS notification delivered to a Lambda subscription (bytes as ``sqs`` sends them)."""
    text, encoded = _text(message)
    if encoded:
        attributes = {**(attributes or {}), "content-transfer-encoding": "base64"}
    arn = f"arn:aws:sns:{_REGION}:{_ACCOUNT}:{topic}"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": arn + ":0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": arn,
                    "Subject": subject,
                    "Message": text or "",
                    "Timestamp": "2024-05-01T10:00:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "ZXhhbXBsZQ==",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {
                        k: {"Type": "String", "Value": v} for k, v in (attributes or {}).items()
                    },
                },
            }
        ]
    }


def s3(
    bucket: str = "uploads",
    key: str = "photo.png",
    event_name: str = "ObjectCreated:Put",
    size: int = 1024,
    etag: str = "0123456789abcdef0123456789abcdef",
) -> dict[str, Any]:
    """An S3 event notification (``event_name`` ``ObjectRemoved:Delete`` for a delete)."""
    obj: dict[str, Any] = {"key": key, "sequencer": "00663224B0C1D2E3F4"}
    if event_name.startswith("ObjectCreated"):
        obj |= {"size": size, "eTag": etag}
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": _REGION,
                "eventTime": "2024-05-01T10:00:00.000Z",
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "198.51.100.30"},
                "responseElements": {"x-amz-request-id": "REQ1", "x-amz-id-2": "ID2"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "notify",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A1B2C3"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def eventbridge(
    detail: dict[str, Any] | None = None,
    detail_type: str = "order.placed",
    source: str = "shop.orders",
    event_id: str = "eb-1",
    rule: str = "orders",
) -> dict[str, Any]:
    """An EventBridge event matched by ``rule``."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": _ACCOUNT,
        "time": _TIME,
        "region": _REGION,
        "resources": [f"arn:aws:events:{_REGION}:{_ACCOUNT}:rule/{rule}"],
        "detail": dict(detail or {}),
    }


def schedule(name: str = "nightly", event_id: str = "sched-1") -> dict[str, Any]:
    """An EventBridge scheduled rule firing (rule ``name``)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": _ACCOUNT,
        "time": _TIME,
        "region": _REGION,
        "resources": [f"arn:aws:events:{_REGION}:{_ACCOUNT}:rule/{name}"],
        "detail": {},
    }


def scheduler(name: str = "nightly", event_id: str = "sched-1") -> dict[str, Any]:
    """An EventBridge Scheduler schedule firing (schedule ``name`` in the default group)."""
    event = schedule(name=name, event_id=event_id)
    event["source"] = "aws.scheduler"
    event["resources"] = [f"arn:aws:scheduler:{_REGION}:{_ACCOUNT}:schedule/default/{name}"]
    return event


def _attribute(value: Any) -> dict[str, Any]:
    # A DynamoDB attribute value in the stream's typed JSON.
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [_attribute(v) for v in value]}
    return {"S": str(value)}


def dynamodb(
    table: str = "Items",
    keys: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    event_name: str = "INSERT",
    sequence: str = "100000000000000000001",
) -> dict[str, Any]:
    """A DynamoDB Streams batch of one change (plain values are typed as DynamoDB does)."""
    keys = {"pk": "item-1"} if keys is None else keys
    if new is None and event_name != "REMOVE":
        new = dict(keys)
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": _EPOCH_MS // 1000,
        "Keys": {k: _attribute(v) for k, v in keys.items()},
        "SequenceNumber": sequence,
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        change["NewImage"] = {k: _attribute(v) for k, v in new.items()}
    if old is not None:
        change["OldImage"] = {k: _attribute(v) for k, v in old.items()}
    return {
        "Records": [
            {
                "eventID": "ddb-" + sequence,
                "eventName": event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": _REGION,
                "dynamodb": change,
                "eventSourceARN": f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/{table}"
                "/stream/2024-05-01T00:00:00.000",
            }
        ]
    }


def kinesis(
    data: str | bytes | dict[str, Any] | list[Any] = "",
    stream: str = "events",
    partition_key: str = "key-1",
    sequence: str = "49650000000000000000000000000000000000000000000000000001",
) -> dict[str, Any]:
    """A Kinesis Data Streams batch of one record."""
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
    raw = data.encode() if isinstance(data, str) else data
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": partition_key,
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(raw).decode(),
                    "approximateArrivalTimestamp": _EPOCH_MS / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{_ACCOUNT}:role/stream-role",
                "awsRegion": _REGION,
                "eventSourceARN": f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/{stream}",
            }
        ]
    }


def kinesis_window(
    data: str | bytes | dict[str, Any] | list[Any] = "",
    stream: str = "events",
    state: dict[str, Any] | None = None,
    start: str = "2024-05-01T10:00:00Z",
    end: str = "2024-05-01T10:05:00Z",
    final: bool = False,
) -> dict[str, Any]:
    """A Kinesis batch of one record in a tumbling window (``final``: its last delivery)."""
    event = kinesis(data, stream)
    event.update(
        window={"start": start, "end": end},
        state=state or {},
        shardId="shardId-000000000000",
        eventSourceARN=f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/{stream}",
        isFinalInvokeForWindow=final,
        isWindowTerminatedEarly=False,
    )
    return event


def lattice(
    method: str = "GET",
    path: str = "/",
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
    source_ip: str = "10.0.0.1",
) -> dict[str, Any]:
    """A VPC Lattice request, event structure v2 (headers and query values in lists)."""
    text, is_base64 = _text(body)
    multi = {k: [v] for k, v in _headers(headers, body).items()}
    multi.setdefault("x-forwarded-for", [source_ip])
    return {
        "version": "2.0",
        "path": path,
        "method": method,
        "headers": multi,
        "queryStringParameters": query or {},
        "body": text or "",
        "isBase64Encoded": is_base64,
        "requestContext": {
            "serviceNetworkArn": f"arn:aws:vpc-lattice:{_REGION}:{_ACCOUNT}:servicenetwork/sn-1",
            "serviceArn": f"arn:aws:vpc-lattice:{_REGION}:{_ACCOUNT}:service/svc-1",
            "targetGroupArn": f"arn:aws:vpc-lattice:{_REGION}:{_ACCOUNT}:targetgroup/tg-1",
            "identity": {"sourceVpcArn": f"arn:aws:ec2:{_REGION}:{_ACCOUNT}:vpc/vpc-1"},
            "region": _REGION,
            "timeEpoch": str(_EPOCH_MS * 1000),
        },
    }


def edge(
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: dict[str, str] | None = None,
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
    event_type: str = "viewer-request",
    client_ip: str = "198.51.100.1",
    request_id: str = "edge-req-1",
) -> dict[str, Any]:
    """A Lambda@Edge event (``event_type``: viewer/origin request/response)."""
    cf_headers = {
        name: [{"key": name.title(), "value": value}]
        for name, value in {"host": "d1example.cloudfront.net", **_headers(headers, body)}.items()
    }
    request: dict[str, Any] = {
        "clientIp": client_ip,
        "headers": cf_headers,
        "method": method,
        "querystring": query,
        "uri": path,
    }
    if body is not None:
        text, is_base64 = _text(body)
        request["body"] = {
            "action": "read-only",
            "data": text if is_base64 else base64.b64encode((text or "").encode()).decode(),
            "encoding": "base64",
            "inputTruncated": False,
        }
    cf: dict[str, Any] = {
        "config": {
            "distributionDomainName": "d1example.cloudfront.net",
            "distributionId": "E1EXAMPLE",
            "eventType": event_type,
            "requestId": request_id,
        },
        "request": request,
    }
    if event_type.endswith("-response"):
        cf["response"] = {"headers": {}, "status": "200", "statusDescription": "OK"}
    return {"Records": [{"cf": cf}]}


def websocket(
    route: str = "$default",
    body: str | bytes | dict[str, Any] | list[Any] | None = None,
    event_type: str = "MESSAGE",
    connection_id: str = "conn-1",
    api_id: str = "ws1example",
    stage: str = "prod",
) -> dict[str, Any]:
    """An API Gateway WebSocket event (``event_type``: CONNECT, MESSAGE or DISCONNECT)."""
    text, is_base64 = _text(body)
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": stage,
            "connectedAt": _EPOCH_MS,
            "requestTimeEpoch": _EPOCH_MS,
            "identity": {"sourceIp": "203.0.113.1"},
            "requestId": f"{connection_id}-req",
            "domainName": f"{api_id}.execute-api.{_REGION}.amazonaws.com",
            "connectionId": connection_id,
            "apiId": api_id,
        },
        "isBase64Encoded": is_base64,
    }
    if text is not None:
        event["body"] = text
    return event


def _call(builder: Callable[..., dict[str, Any]], overrides: dict[str, Any]) -> dict[str, Any]:
    allowed = inspect.signature(builder).parameters
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"unknown override(s) {', '.join(unknown)} for {builder.__name__!r}; "
            f"known: {', '.join(allowed)}"
        )
    return builder(**overrides)


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "http_api": http_api,
    "function_url": function_url,
    "rest_api": rest_api,
    "alb": alb,
    "sqs": sqs,
    "sqs_fifo": sqs_fifo,
    "sns": sns,
    "s3": s3,
    "eventbridge": eventbridge,
    "schedule": schedule,
    "scheduler": scheduler,
    "dynamodb": dynamodb,
    "kinesis": kinesis,
    "kinesis_window": kinesis_window,
    "lattice": lattice,
    "edge": edge,
    "websocket": websocket,
}


def build(kind: str, **overrides: Any) -> dict[str, Any]:
    """The native event of ``kind`` (a key of ``BUILDERS``) with ``overrides`` applied."""
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise KeyError(f"unknown AWS event kind {kind!r}; known: {', '.join(BUILDERS)}") from None
    params = inspect.signature(builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return builder(**overrides)  # a variant: it checks against the builder it extends
    return _call(builder, overrides)


class ClientTransport:
    """Sends a test client's events through ``polyserve_aws.handler(app)``.

    The event methods return the handler's answer: the batch response of a queue, ``None``
    of a schedule; ``TestClient(app, provider="aws")`` sends its HTTP requests itself.
    """

    def __init__(self, app: App) -> None:
        import polyserve_aws

        self.handler = polyserve_aws.handler(app)
        self._ids = 0

    def _call(self, event: dict[str, Any]) -> Any:
        self._ids += 1
        return self.handler(event, LambdaContext(f"req-{self._ids}"))

    def queue(self, name: str, body: Any, overrides: Mapping[str, Any]) -> Any:
        return self._call(
            build("sqs", body=body if body is not None else "", queue=name, **overrides)
        )

    def schedule(self, name: str, overrides: Mapping[str, Any]) -> Any:
        return self._call(build("schedule", name=name, **overrides))

    def deliver(self, kind: str, overrides: Mapping[str, Any]) -> Any:
        return self._call(build(kind, **overrides))


def client_transport(app: App) -> ClientTransport:
    """The transport of ``polyserve.testing.AsyncTestClient(app, provider="aws")``'s events."""
    return ClientTransport(app)
