"""Outbound on AWS: SQS (standard and FIFO), SNS, EventBridge and S3, through boto3.

Select it with ``POLYSERVE_OUTBOUND=aws`` (importing ``polyserve_aws`` registers it)
or ``polyserve.outbound.configure(AwsBackend())``. Targets: a queue URL, a topic ARN,
an event bus name or ARN (``POLYSERVE_TOPIC_<NAME>=events:<bus>``), a bucket name.
boto3 is imported by the first send, and each service's client is made once.

Bodies SQS and SNS cannot carry as text (bytes that are not UTF-8, or hold characters
outside XML's) are sent base64-encoded with the attribute ``content-transfer-encoding:
base64``, which the Lambda adapter honours. The producer's trace travels as the
``traceparent`` (and ``tracestate``) message attribute, and on SQS as ``AWSTraceHeader``
too; on EventBridge as ``TraceHeader`` (X-Ray).

A ``CloudEvent`` goes to SQS and SNS (which have no CloudEvents binding) in the
structured JSON form, with ``content-type: application/cloudevents+json``; to
EventBridge with its source and type as the entry's ``Source`` and ``DetailType``, its
time as ``Time``, and the structured form as ``detail`` (plus the ``traceparent``
extension from ``trace=``), which the Lambda adapter reads back as the CloudEvent.

Limits (AWS documentation): an SQS message up to 1 MiB (1,048,576 bytes, raised
from 256 KiB in 2025), an SNS message and an EventBridge entry up to 256 KiB, batches
of 10 for all three; one S3 ``PutObject`` up to 5 GiB.
"""

from __future__ import annotations

from polyserve.errors import ConfigurationError
from polyserve.outbound.errors import ObjectNotFoundError, PublishError, TransientPublishError
from polyserve_aws._wire import ENCODING_ATTRIBUTE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from polyserve.events.cloudevent import CloudEvent
    from polyserve.outbound.message import Message

__all__ = ["ENCODING_ATTRIBUTE", "AwsBackend"]

KIB = 1024
_LIMITS = {"SQS": 1024 * KIB, "SNS": 256 * KIB, "EventBridge": 256 * KIB, "S3": 5 * 1024**3}
_TRANSIENT = frozenset(
    (
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "KMSThrottlingException",
        "RequestLimitExceeded",
    )
)
_MISSING = frozenset(
    (
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NotFound",
        "NotFoundException",
        "ResourceNotFoundException",
        "NoSuchBucket",
        "InvalidClientTokenId",
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnrecognizedClientException",
    )
)


def _text(body: bytes) -> tuple[str, bool]:
    """``body`` as the text SQS and SNS carry, and whether it had to be base64-encoded.

    Both take only XML characters (no NUL or other control characters but tab and line
    breaks, no U+FFFE/U+FFFF): a body that is not UTF-8, or holds one of those, travels
    base64-encoded with the ``content-transfer-encoding: base64`` attribute, which the
    Lambda adapter honours, so the consumer gets the same bytes.
    """
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and (text.isprintable() or _carried(text)):
        return text, False
    import base64

    return base64.b64encode(body).decode(), True


def _carried(text: str) -> bool:
    import re

    return re.search("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", text) is None


def _error(code: str, message: str, target: str) -> Exception:
    if code in ("NoSuchKey", "404"):
        return ObjectNotFoundError(f"no such object in {target!r}")
    if code in _TRANSIENT:
        return TransientPublishError(f"{code}: {message}")
    if code in _MISSING:
        return ConfigurationError(f"{target!r}: {code} (check the name and the credentials)")
    return PublishError(f"{code}: {message}")


class AwsBackend:
    """Queues, topics and buckets on AWS. ``client_options`` go to every ``boto3.client``
    (``endpoint_url``, ``region_name``, credentials), for local servers and tests."""

    needs_target = True

    def __init__(self, **client_options: Any) -> None:
        self.client_options = client_options
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (``"sqs"``, ``"sns"``, ``"events"``, ``"s3"``), made once."""
        found = self._clients.get(service)
        if found is None:
            try:
                import boto3
            except ImportError as exc:
                from polyserve.errors import MissingDependencyError

                raise MissingDependencyError(
                    "boto3", feature="AWS outbound", extra="polyserve-aws[outbound]"
                ) from exc
            make: Any = boto3.client
            found = self._clients[service] = make(service, **self.client_options)
        return found

    def _call(self, target: str, method: Any, **kwargs: Any) -> Any:
        import botocore.exceptions as errors

        try:
            return method(**kwargs)
        except errors.ClientError as exc:
            info = exc.response.get("Error", {})
            raise _error(str(info.get("Code", "")), str(info.get("Message", "")), target) from None
        except errors.NoCredentialsError:
            raise ConfigurationError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a role"
            ) from None
        except errors.NoRegionError:
            raise ConfigurationError("no AWS region: set AWS_REGION") from None
        except (errors.EndpointConnectionError, errors.ConnectionClosedError) as exc:
            raise TransientPublishError(f"{type(exc).__name__} for {target!r}") from None

    @staticmethod
    def _kind(kind: str, target: str) -> str:
        if kind == "bucket":
            return "S3"
        if target.startswith(("https://", "http://")):
            return "SQS"
        if target.startswith("arn:aws:sns:"):
            return "SNS"
        if target.startswith(("events:", "arn:aws:events:")):
            return "EventBridge"
        return "SQS" if kind == "queue" else "SNS"

    def service(self, kind: str, target: str) -> str:
        return self._kind(kind, target)

    def max_bytes(self, kind: str, target: str) -> int:
        return _LIMITS[self._kind(kind, target)]

    def max_batch(self, kind: str, target: str) -> int:
        return 10

    def send(self, kind: str, target: str, messages: Sequence[Message]) -> list[str | Exception]:
        service = self._kind(kind, target)
        if service == "SQS":
            return self._sqs(target, messages)
        if service == "SNS":
            return self._sns(target, messages)
        return self._events(target.removeprefix("events:"), messages)

    @staticmethod
    def _attributes(message: Message, encoded: bool) -> dict[str, Any]:
        out = {k: {"DataType": "String", "StringValue": v} for k, v in message.headers().items()}
        if encoded:
            out[ENCODING_ATTRIBUTE] = {"DataType": "String", "StringValue": "base64"}
        return out

    @staticmethod
    def _xray(message: Message) -> str | None:
        trace = message.trace
        if trace is None or trace.xray_id is None or trace.span_id is None:
            return None
        return f"Root={trace.xray_id};Parent={trace.span_id};Sampled={1 if trace.sampled else 0}"

    def message_size(self, kind: str, target: str, message: Message) -> int:
        """The bytes the service counts against its limit. SQS and SNS count the body as
        sent (base64 when it is not text they carry) and each attribute's name, type and
        value; EventBridge, the entry (counted as its body)."""
        if self._kind(kind, target) not in ("SQS", "SNS"):
            return len(message.body)
        body, encoded = _text(message.body)
        size = len(body) + len(ENCODING_ATTRIBUTE) + 12 if encoded else len(message.body)
        for name, value in message.headers().items():
            size += len(name.encode()) + len(value.encode()) + 6  # 6: the type, "String"
        return size

    def _sqs(self, url: str, messages: Sequence[Message]) -> list[str | Exception]:
        fifo = url.endswith(".fifo")
        entries = []
        for i, message in enumerate(messages):
            body, encoded = _text(message.body)
            entry: dict[str, Any] = {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": self._attributes(message, encoded),
            }
            xray = self._xray(message)
            if xray is not None:
                entry["MessageSystemAttributes"] = {
                    "AWSTraceHeader": {"DataType": "String", "StringValue": xray}
                }
            if fifo:
                entry["MessageGroupId"] = message.key or "default"
                if message.dedup_id:
                    entry["MessageDeduplicationId"] = message.dedup_id
            elif message.delay:
                entry["DelaySeconds"] = message.delay
            entries.append(entry)
        sqs = self.client("sqs")
        answer = self._call(url, sqs.send_message_batch, QueueUrl=url, Entries=entries)
        return self._outcomes(len(messages), answer, "MessageId", url)

    def _sns(self, arn: str, messages: Sequence[Message]) -> list[str | Exception]:
        fifo = arn.endswith(".fifo")
        entries = []
        for i, message in enumerate(messages):
            body, encoded = _text(message.body)
            entry: dict[str, Any] = {
                "Id": str(i),
                "Message": body,
                "MessageAttributes": self._attributes(message, encoded),
            }
            if fifo:
                entry["MessageGroupId"] = message.key or "default"
                if message.dedup_id:
                    entry["MessageDeduplicationId"] = message.dedup_id
            entries.append(entry)
        sns = self.client("sns")
        answer = self._call(
            arn, sns.publish_batch, TopicArn=arn, PublishBatchRequestEntries=entries
        )
        return self._outcomes(len(messages), answer, "MessageId", arn)

    def _events(self, bus: str, messages: Sequence[Message]) -> list[str | Exception]:
        import json

        entries = []
        for message in messages:
            event = message.cloudevent
            if event is not None:
                entry = self._cloudevent_entry(bus, message, event)
            else:
                try:
                    detail = (
                        json.loads(message.body)
                        if message.content_type == "application/json"
                        else None
                    )
                except ValueError:
                    detail = None
                if not isinstance(detail, dict):
                    detail = {"data": _text(message.body)[0]}
                entry = {
                    "EventBusName": bus,
                    "Source": message.attributes.get("source", "polyserve"),
                    "DetailType": message.attributes.get("type", "message"),
                    "Detail": json.dumps(detail, separators=(",", ":")),
                }
            xray = self._xray(message)
            if xray is not None:
                entry["TraceHeader"] = xray
            entries.append(entry)
        events = self.client("events")
        answer = self._call(bus, events.put_events, Entries=entries)
        out: list[str | Exception] = []
        for result in answer.get("Entries", []):
            if "EventId" in result and not result.get("ErrorCode"):
                out.append(result["EventId"])
            else:
                out.append(_error(result.get("ErrorCode", ""), result.get("ErrorMessage", ""), bus))
        while len(out) < len(messages):
            out.append(PublishError("EventBridge returned no result for the entry"))
        return out

    @staticmethod
    def _cloudevent_entry(bus: str, message: Message, event: CloudEvent) -> dict[str, Any]:
        # The event's source and type route it; the detail is the whole event in the
        # structured JSON form, with the producer's trace as the CloudEvents
        # distributed-tracing extension when the event carries none.
        import json

        from polyserve.outbound.cloudevents import to_dict

        detail = to_dict(event)
        trace = message.trace
        if trace is not None and trace.traceparent is not None and "traceparent" not in detail:
            detail["traceparent"] = trace.traceparent
            if trace.tracestate:
                detail["tracestate"] = trace.tracestate
        entry: dict[str, Any] = {
            "EventBusName": bus,
            "Source": event.source,
            "DetailType": event.type,
            "Detail": json.dumps(detail, separators=(",", ":")),
        }
        if event.time is not None:
            entry["Time"] = event.time
        return entry

    @staticmethod
    def _outcomes(count: int, answer: Any, id_field: str, target: str) -> list[str | Exception]:
        out: list[str | Exception] = [PublishError("no result for the message")] * count
        for ok in answer.get("Successful", []):
            out[int(ok["Id"])] = ok[id_field]
        for failed in answer.get("Failed", []):
            code = failed.get("Code", "")
            error = _error(code, failed.get("Message", ""), target)
            if not failed.get("SenderFault", True) and not isinstance(error, TransientPublishError):
                error = TransientPublishError(f"{code}: {failed.get('Message', '')}")
            out[int(failed["Id"])] = error
        return out

    # Buckets

    def put(
        self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        s3 = self.client("s3")
        self._call(
            target,
            s3.put_object,
            Bucket=target,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata=dict(metadata),
        )

    def _get(self, target: str, key: str) -> Any:
        s3 = self.client("s3")
        return self._call(target, s3.get_object, Bucket=target, Key=key)

    def get(self, target: str, key: str) -> bytes:
        data: bytes = self._get(target, key)["Body"].read()
        return data

    def open(self, target: str, key: str, chunk_size: int) -> Iterator[bytes]:
        body = self._get(target, key)["Body"]
        chunks: Iterator[bytes] = body.iter_chunks(chunk_size)
        return chunks

    def delete(self, target: str, key: str) -> None:
        s3 = self.client("s3")
        self._call(target, s3.delete_object, Bucket=target, Key=key)

    def list(self, target: str, prefix: str) -> Iterator[str]:
        s3 = self.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=target, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"]

    def url(self, target: str, key: str, expires: int, method: str) -> str:
        s3 = self.client("s3")
        operation = {"GET": "get_object", "PUT": "put_object", "DELETE": "delete_object"}[method]
        found: str = s3.generate_presigned_url(
            operation, Params={"Bucket": target, "Key": key}, ExpiresIn=expires
        )
        return found
