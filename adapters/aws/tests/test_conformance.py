"""Conformance: every native sample parses, and its typed fields match the raw JSON.

Runs on this adapter's samples in ``tests/events`` and on every folder given with
``--events-dir`` (searched recursively)::

    uv run pytest adapters/aws/tests/test_conformance.py --events-dir ../shared/events

Each sample goes through ``polyserve_aws.handler`` with an app that records what its
handlers receive. The expected values are read from the raw JSON here, by the rules in
``docs/providers/aws.md``; a sample no source recognises must raise
``UnsupportedEventError``. Where the raw JSON breaks a rule (a body flagged base64 that
is not), the expected outcome is the documented one: a 400 for HTTP, a failed record
for batches, ``MalformedEventError`` otherwise.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import importlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, unquote_plus

import pytest
from adapters.aws.tests.support import EVENTS, FakeLambdaContext

import polyserve_aws
from polyserve import (
    ChangeType,
    CloudEvent,
    Headers,
    HttpRequest,
    Message,
    QueryParams,
    ScheduleEvent,
    StorageAction,
    StorageEvent,
    StreamRecord,
    WebSocketEvent,
)
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


def _samples(config: pytest.Config) -> list[tuple[str, Path]]:
    found = [(f"own/{p.name}", p) for p in sorted(EVENTS.glob("*.json"))]
    for folder in config.getoption("--events-dir"):
        root = Path(folder)
        if not root.is_dir():
            raise pytest.UsageError(f"--events-dir {folder!r} is not a folder")
        found += [(str(p.relative_to(root)), p) for p in sorted(root.rglob("*.json"))]
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample" in metafunc.fixturenames:
        samples = _samples(metafunc.config)
        metafunc.parametrize("sample", [p for _, p in samples], ids=[i for i, _ in samples])


# -- the documented recognition rules ----------------------------------------------

_RECORD_SOURCES = {
    "aws:sqs": "sqs",
    "aws:sns": "sns",
    "aws:s3": "s3",
    "aws:dynamodb": "dynamodb",
    "aws:kinesis": "kinesis",
}


def kind_of(raw: Any) -> str | None:
    """Which source family should handle ``raw`` (``None``: none should)."""
    if not isinstance(raw, dict) or "methodArn" in raw or "routeArn" in raw:
        return None
    if raw.get("version") == "2.0" and ("rawPath" in raw or "routeKey" in raw):
        return "http_v2"
    if "raw_path" in raw or (raw.get("version") == "2.0" and "serviceNetworkArn" in str(raw)):
        return "lattice"
    if isinstance(raw.get("requestContext"), dict) and raw["requestContext"].get("eventType") in (
        "CONNECT", "MESSAGE", "DISCONNECT",
    ):  # fmt: skip
        return "websocket"
    first = (raw.get("Records") or [None])[0]
    if isinstance(first, dict) and isinstance(first.get("cf"), dict):
        return "edge"
    context = raw.get("requestContext")
    if isinstance(context, dict) and "elb" in context:
        return "alb"
    if isinstance(context, dict) and "httpMethod" in raw:
        return "http_v1"
    if raw.get("eventSource") in ("aws:kafka", "aws:SelfManagedKafka") and isinstance(
        raw.get("records"), dict
    ):
        return "kafka"
    records = raw.get("Records")
    if isinstance(raw.get("window"), dict) and isinstance(raw.get("eventSourceARN"), str):
        service = raw["eventSourceARN"].split(":")[2:3]
        if service in (["kinesis"], ["dynamodb"]):
            return "window"
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource", records[0].get("EventSource"))
        return _RECORD_SOURCES.get(source) if isinstance(source, str) else None
    if ("detail-type" in raw and "source" in raw) or "polyserve_schedule" in raw:
        return "eventbridge"
    return None


def short_name(arn: str) -> str:
    if not arn.startswith("arn:"):
        return arn
    resource = arn.split(":", 5)[5]
    parts = resource.split("/")
    return parts[1] if parts[0] == "table" and len(parts) >= 4 else parts[-1]


def b64(value: Any) -> bytes:
    return base64.b64decode(value, validate=True)


def iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- expectations per family -------------------------------------------------------


def expected_request(raw: dict[str, Any], kind: str, request_id: str) -> HttpRequest:
    """The request the handler must see, from the raw event (raises if it is malformed)."""
    body = raw.get("body") or ""
    data = b64(body) if raw.get("isBase64Encoded") else body.encode()
    context = raw["requestContext"]
    if kind == "http_v2":
        headers = list(raw.get("headers", {}).items())
        if raw.get("cookies"):
            headers.append(("cookie", "; ".join(raw["cookies"])))
        return HttpRequest(
            method=context["http"]["method"],
            path=unquote(raw["rawPath"]),
            query=QueryParams.from_string(raw.get("rawQueryString") or ""),
            headers=Headers(headers),
            body=data,
            client=context["http"].get("sourceIp"),
            request_id=context.get("requestId") or request_id,
        )
    if raw.get("multiValueHeaders"):
        headers = [(k, v) for k, vs in raw["multiValueHeaders"].items() for v in vs]
    else:
        headers = list((raw.get("headers") or {}).items())
    if raw.get("multiValueQueryStringParameters"):
        query = [(k, v) for k, vs in raw["multiValueQueryStringParameters"].items() for v in vs]
    else:
        query = list((raw.get("queryStringParameters") or {}).items())
    if kind == "alb":
        query = [(unquote_plus(k), unquote_plus(v)) for k, v in query]
        forwarded = [v for k, v in headers if k.lower() == "x-forwarded-for"]
        client = forwarded[-1].split(",")[-1].strip() if forwarded else None
        rid = request_id
    else:
        client = (context.get("identity") or {}).get("sourceIp")
        rid = context.get("requestId") or request_id
    return HttpRequest(
        method=raw["httpMethod"],
        path=unquote(raw["path"]),
        query=QueryParams(query),
        headers=Headers(headers),
        body=data,
        client=client,
        request_id=rid,
    )


def check_http(raw: dict[str, Any], kind: str, recorder: Recorder, out: Any) -> None:
    ctx = FakeLambdaContext()
    try:
        expected = expected_request(raw, kind, ctx.aws_request_id)
    except binascii.Error:
        assert out["statusCode"] == 400
        assert json.loads(out["body"])["code"] == "invalid_base64"
        assert recorder.seen == []
        return
    assert out["statusCode"] == 200, out
    (request,) = recorder.seen
    assert isinstance(request, HttpRequest)
    assert request.method == expected.method
    assert request.path == expected.path
    assert request.query == expected.query
    assert request.headers == expected.headers
    assert request.body == expected.body
    assert request.client == expected.client
    assert request.request_id == expected.request_id
    assert request.raw is raw
    body_key = "multiValueHeaders" if kind == "http_v1" or "multiValueHeaders" in raw else None
    if body_key:
        assert body_key in out


def check_sqs(record: dict[str, Any], seen: Message) -> None:
    attributes = record["attributes"]
    assert seen.id == record["messageId"]
    assert seen.body == record["body"].encode()
    assert seen.attempt == int(attributes["ApproximateReceiveCount"])
    sent = int(attributes["SentTimestamp"])
    assert seen.enqueued_at is not None
    assert int(seen.enqueued_at.timestamp() * 1000) == sent
    assert seen.source == short_name(record["eventSourceARN"])
    assert seen.group_key == attributes.get("MessageGroupId")
    for name, attribute in record["messageAttributes"].items():
        assert seen.attributes[name] == attribute.get("stringValue", attribute.get("binaryValue"))


def check_sns(record: dict[str, Any], seen: Message) -> None:
    sns = record["Sns"]
    assert seen.id == sns["MessageId"]
    assert seen.body == sns["Message"].encode()
    assert seen.subject == sns.get("Subject")
    assert seen.source == short_name(sns["TopicArn"])
    assert seen.enqueued_at == iso(sns["Timestamp"])
    for name, attribute in (sns.get("MessageAttributes") or {}).items():
        assert seen.attributes[name] == attribute["Value"]


_S3_FAMILIES = {
    "ObjectCreated": StorageAction.CREATED,
    "ObjectRemoved": StorageAction.DELETED,
    "LifecycleExpiration": StorageAction.DELETED,
    "LifecycleTransition": StorageAction.ARCHIVED,
    "IntelligentTiering": StorageAction.ARCHIVED,
    "ObjectTagging": StorageAction.METADATA_UPDATED,
    "ObjectAcl": StorageAction.METADATA_UPDATED,
}


def check_s3(record: dict[str, Any], seen: StorageEvent) -> None:
    obj = record["s3"]["object"]
    assert seen.bucket == record["s3"]["bucket"]["name"]
    assert seen.key == unquote_plus(obj["key"])
    if "urlDecodedKey" in obj:
        assert seen.key == obj["urlDecodedKey"]
    assert seen.size == obj.get("size")
    assert seen.etag == obj.get("eTag")
    assert seen.version == obj.get("versionId")
    name = record["eventName"]
    family = "ObjectRestore:Completed" if name == "ObjectRestore:Completed" else name.split(":")[0]
    assert seen.action is _S3_FAMILIES.get(family, StorageAction.RESTORED)
    assert seen.occurred_at == iso(record["eventTime"])


class _Set(list[Any]):
    """A DynamoDB set (SS/NS/BS): the adapter gives a list, in any order."""


def _plain(value: Any) -> Any:
    """A value from boto3's TypeDeserializer in the adapter's documented plain form."""
    from boto3.dynamodb.types import Binary

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else value
    if isinstance(value, Binary):
        return cast("Any", value).value  # the stubs omit the attribute
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return _Set(sorted((_plain(v) for v in value), key=repr))
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, Decimal):
        return isinstance(ours, (int, float)) and Decimal(repr(ours)) == theirs.normalize()
    if isinstance(theirs, dict):
        return (
            isinstance(ours, dict)
            and ours.keys() == theirs.keys()
            and all(_same(ours[k], theirs[k]) for k in theirs)
        )
    if isinstance(theirs, list):
        if not isinstance(ours, list) or len(ours) != len(theirs):
            return False
        if isinstance(theirs, _Set):
            ours = sorted(ours, key=repr)
        return all(_same(a, b) for a, b in zip(ours, theirs, strict=True))
    return bool(ours == theirs)


def _as_sent_by_botocore(value: dict[str, Any]) -> Any:
    """An AttributeValue with its binaries decoded, as botocore hands them to boto3."""
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": b64(inner)}
    if tag == "BS":
        return {"BS": [b64(b) for b in inner]}
    if tag == "M":
        return {"M": {k: _as_sent_by_botocore(v) for k, v in inner.items()}}
    if tag == "L":
        return {"L": [_as_sent_by_botocore(v) for v in inner]}
    return value


def _image(image: dict[str, Any] | None) -> Any:
    """An image converted by boto3's own deserializer: the reference for the adapter's."""
    from boto3.dynamodb.types import TypeDeserializer

    if image is None:
        return None
    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(_as_sent_by_botocore(v))) for k, v in image.items()}


def check_dynamodb(record: dict[str, Any], seen: StreamRecord) -> None:
    ddb = record["dynamodb"]
    assert seen.id == record["eventID"]
    assert seen.change is ChangeType(record["eventName"].lower())
    assert seen.source == short_name(record["eventSourceARN"])
    assert seen.sequence == ddb.get("SequenceNumber")
    assert _same(seen.keys, _image(ddb.get("Keys")) or {})
    assert _same(seen.old, _image(ddb.get("OldImage"))) or seen.old is ddb.get("OldImage") is None
    assert _same(seen.new, _image(ddb.get("NewImage"))) or seen.new is ddb.get("NewImage") is None
    if "ApproximateCreationDateTime" in ddb:
        assert seen.occurred_at is not None
        assert seen.occurred_at.timestamp() == pytest.approx(ddb["ApproximateCreationDateTime"])


def check_kinesis(record: dict[str, Any], seen: Message) -> None:
    kinesis = record["kinesis"]
    assert seen.id == kinesis["sequenceNumber"]
    assert seen.body == b64(kinesis["data"])
    assert seen.group_key == kinesis.get("partitionKey")
    assert seen.source == short_name(record["eventSourceARN"])
    assert seen.enqueued_at is not None
    assert seen.enqueued_at.timestamp() == pytest.approx(kinesis["approximateArrivalTimestamp"])


_CHECKS: dict[str, Any] = {
    "sqs": (check_sqs, "messageId"),
    "sns": (check_sns, None),
    "s3": (check_s3, None),
    "dynamodb": (check_dynamodb, ("dynamodb", "SequenceNumber")),
    "kinesis": (check_kinesis, ("kinesis", "sequenceNumber")),
}

_EB_S3 = {"Object Created", "Object Deleted", "Object Restore Completed", "Object Tags Added",
          "Object Tags Deleted", "Object ACL Updated", "Object Storage Class Changed",
          "Object Access Tier Changed"}  # fmt: skip


def check_eventbridge(raw: dict[str, Any], seen: object) -> None:
    if "polyserve_schedule" in raw:
        assert isinstance(seen, ScheduleEvent)
        assert seen.name == raw["polyserve_schedule"]
        assert seen.payload == raw.get("payload")
        return
    assert getattr(seen, "id", None) == raw["id"]
    source, detail_type = raw["source"], raw["detail-type"]
    if source == "aws.s3" and detail_type in _EB_S3:
        assert isinstance(seen, StorageEvent)
        assert seen.bucket == raw["detail"]["bucket"]["name"]
        assert seen.key == unquote_plus(raw["detail"]["object"]["key"])
        assert seen.size == raw["detail"]["object"].get("size")
    elif detail_type == "Scheduled Event" and source in ("aws.events", "aws.scheduler"):
        assert isinstance(seen, ScheduleEvent)
        assert seen.name == short_name(raw["resources"][0])
    else:
        assert isinstance(seen, CloudEvent)
        assert (seen.source, seen.type, seen.data) == (source, detail_type, raw.get("detail"))
        assert seen.extensions.get("account") == raw.get("account")
        assert seen.extensions.get("region") == raw.get("region")
    if "time" in raw:
        when = getattr(seen, "occurred_at", None) or getattr(seen, "scheduled_at", None)
        assert (when or getattr(seen, "time", None)) == iso(raw["time"])


def check_kafka(raw: dict[str, Any], seen: list[Any]) -> None:
    records = [r for partition in raw["records"].values() for r in partition]
    assert len(seen) == len(records)
    for record, message in zip(records, seen, strict=True):
        assert isinstance(message, Message)
        assert message.id == f"{record['topic']}-{record['partition']}@{record['offset']}"
        assert message.body == b64(record["value"])
        assert message.source == record["topic"]
        key = record.get("key")
        assert message.group_key == (None if key is None else b64(key).decode())
        headers = {k: bytes(v).decode() for h in record.get("headers", []) for k, v in h.items()}
        assert message.attributes == headers
        assert message.enqueued_at == dt.datetime.fromtimestamp(
            record["timestamp"] / 1000, dt.timezone.utc
        )


def _lattice_pairs(value: Any) -> list[tuple[str, str]]:
    return [
        (k, v) for k, vs in (value or {}).items() for v in (vs if isinstance(vs, list) else [vs])
    ]


def check_lattice(raw: dict[str, Any], recorder: Recorder, out: Any) -> None:
    v2 = "raw_path" not in raw
    encoded = raw.get("isBase64Encoded" if v2 else "is_base64_encoded")
    try:
        body = b64(raw.get("body") or "") if encoded else (raw.get("body") or "").encode()
    except binascii.Error:
        assert out["statusCode"] == 400
        return
    assert out["statusCode"] == 200, out
    (request,) = recorder.seen
    assert isinstance(request, HttpRequest)
    path, _, raw_query = (raw["path"] if v2 else raw["raw_path"]).partition("?")
    assert request.method == raw["method"]
    assert request.path == unquote(path)
    assert request.headers == Headers(_lattice_pairs(raw.get("headers")))
    if v2:
        assert request.query == QueryParams(_lattice_pairs(raw.get("queryStringParameters")))
    elif raw.get("query_string_parameters") is not None or not raw_query:
        assert request.query == QueryParams(_lattice_pairs(raw.get("query_string_parameters")))
    else:
        assert request.query == QueryParams.from_string(raw_query)
    assert request.body == body
    assert request.raw is raw
    assert out["statusDescription"] == "200 OK"


def check_edge(raw: dict[str, Any], recorder: Recorder, out: Any) -> None:
    cf = raw["Records"][0]["cf"]
    request = cf["request"]
    assert out["status"] == "200", out
    (seen,) = recorder.seen
    assert isinstance(seen, HttpRequest)
    assert seen.method == request["method"]
    assert seen.path == unquote(request["uri"])
    assert seen.query == QueryParams.from_string(request.get("querystring", ""))
    headers = [(name, e["value"]) for name, entries in request["headers"].items() for e in entries]
    assert seen.headers == Headers(headers)
    assert seen.client == request.get("clientIp")
    assert seen.request_id == cf["config"]["requestId"]
    body = request.get("body")
    if body is not None:
        data = body.get("data", "")
        assert seen.body == (b64(data) if body.get("encoding") == "base64" else data.encode())
    assert ("body" in out) == (cf["config"]["eventType"] != "viewer-response")
    for name, entries in out["headers"].items():
        assert name == name.lower()
        assert all(e["key"].lower() == name for e in entries)


def check_websocket(raw: dict[str, Any], recorder: Recorder, out: Any) -> None:
    context = raw["requestContext"]
    assert out == {"statusCode": 200}
    (seen,) = recorder.seen
    assert isinstance(seen, WebSocketEvent)
    assert seen.action.value == context["eventType"].lower()
    assert seen.connection_id == context["connectionId"]
    assert seen.route == context["routeKey"]
    body = raw.get("body") or ""
    assert seen.body == (b64(body) if raw.get("isBase64Encoded") else body.encode())
    assert seen.source == context.get("apiId", "")
    if "domainName" in context and "stage" in context:
        assert seen.endpoint == f"https://{context['domainName']}/{context['stage']}"


def _item_id(record: dict[str, Any], key: Any) -> str:
    if isinstance(key, tuple):
        return str(record[key[0]][key[1]])
    return str(record[key])


def test_sample_conforms(sample: Path) -> None:
    raw = json.loads(sample.read_text())
    kind = kind_of(raw)
    recorder = Recorder.catch_all()
    handler = polyserve_aws.handler(recorder.app)
    ctx = FakeLambdaContext()

    if kind is None:
        with pytest.raises(UnsupportedEventError):
            handler(raw, ctx)
        assert recorder.seen == []
        return
    if kind in ("http_v1", "http_v2", "alb"):
        check_http(raw, kind, recorder, handler(raw, ctx))
    elif kind == "kafka":
        assert handler(raw, ctx) is None
        check_kafka(raw, recorder.seen)
    elif kind == "eventbridge":
        handler(raw, ctx)
        (seen,) = recorder.seen
        check_eventbridge(raw, seen)
    elif kind == "lattice":
        check_lattice(raw, recorder, handler(raw, ctx))
    elif kind == "edge":
        check_edge(raw, recorder, handler(raw, ctx))
    elif kind == "websocket":
        check_websocket(raw, recorder, handler(raw, ctx))
    elif kind == "window":
        # Records go one by one to the "*" registration, as without a window, and the
        # answer carries the state unchanged (see test_window.py for window handlers).
        out = handler(raw, ctx)
        assert out["state"] == raw.get("state", {})
        assert out["batchItemFailures"] == []
        records = raw["Records"]
        assert len(recorder.seen) == len(records)
        for record, seen in zip(records, recorder.seen, strict=True):
            family = _RECORD_SOURCES[record["eventSource"]]
            _CHECKS[family][0](record, seen)
    elif kind in ("sns", "s3"):
        check, _ = _CHECKS[kind]
        handler(raw, ctx)
        assert len(recorder.seen) == len(raw["Records"])
        for record, seen in zip(raw["Records"], recorder.seen, strict=True):
            check(record, seen)
    else:
        check, key = _CHECKS[kind]
        out = handler(raw, ctx)
        failed = {f["itemIdentifier"] for f in out["batchItemFailures"]}
        seen_iter = iter(recorder.seen)
        for record in raw["Records"]:
            if _item_id(record, key) in failed:
                continue  # a record the adapter could not read; it must be one the rules reject
            check(record, next(seen_iter))
        assert next(seen_iter, None) is None
        for record in raw["Records"]:
            if _item_id(record, key) in failed:
                module = importlib.import_module(f"polyserve_aws._{kind}")
                with pytest.raises(MalformedEventError):
                    module.to_event(record, {})
