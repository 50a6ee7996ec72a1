"""Properties: every request survives each AWS HTTP format; junk never crashes the handler."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.codecs import (
    HTTP_CODECS,
    MESSAGE_CODECS,
    BatchItemFailedError,
)
from adapters.aws.tests.support import FakeLambdaContext, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyserve_aws
from polyserve import App, Context, HttpRequest, HttpResponse, Message
from polyserve.errors import PolyserveError
from polyserve_testkit.codecs import NativeResponse
from polyserve_testkit.recorder import Recorder
from polyserve_testkit.strategies import http_requests, messages

if TYPE_CHECKING:
    from polyserve_testkit.codecs import HttpCodec, MessageCodec


class EchoApp:
    """An app that records what its handlers receive and answers from the request."""

    def __init__(self, *, fail_messages: bool = False) -> None:
        self.app = App("properties")
        self.requests: list[HttpRequest] = []
        self.messages: list[Message] = []

        @self.app.route("/echo/{rest:path}", ["GET", "POST", "PUT", "PATCH", "DELETE"])
        def echo(request: HttpRequest) -> HttpResponse:
            self.requests.append(request)
            return answer(request)

        @self.app.queue("orders")
        def on_order(message: Message) -> None:
            self.messages.append(message)
            if fail_messages:
                raise RuntimeError("handler failed")


def answer(request: HttpRequest) -> HttpResponse:
    """Text or binary by the request; two cookies and a repeated header on every answer."""
    if request.content_type == "application/octet-stream":
        response = HttpResponse.binary(request.body, 201)
    else:
        response = HttpResponse.json({"path": request.path, "n": len(request.body)})
    return (
        response.with_header("x-seen", request.method)
        .with_header("x-seen", str(len(request.query)))
        .set_cookie("a", "1")
        .set_cookie("b", "2")
    )


@pytest.mark.parametrize("codec", HTTP_CODECS, ids=lambda c: c.name)
@settings(max_examples=75, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(request=http_requests())
def test_each_format_delivers_the_same_request(codec: HttpCodec, request: HttpRequest) -> None:
    echo = EchoApp()

    native = codec.call(echo.app, request)

    assert len(echo.requests) == 1
    seen = dataclasses.replace(echo.requests[0], path_params={})
    assert seen == codec.expected(request)
    direct = echo.app.handle_http(codec.expected(request), Context("reference"))
    expected = codec.expected_response(NativeResponse(direct.status, direct.headers, direct.body))
    assert native == expected


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
@settings(max_examples=75, deadline=None)
@given(message=messages())
def test_each_queue_format_delivers_the_same_message(codec: MessageCodec, message: Message) -> None:
    echo = EchoApp()

    codec.call(echo.app, message)

    assert echo.messages == [codec.expected(message)]


@pytest.mark.parametrize("codec", MESSAGE_CODECS, ids=lambda c: c.name)
def test_a_failed_message_is_reported(codec: MessageCodec) -> None:
    echo = EchoApp(fail_messages=True)
    when = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)

    with pytest.raises(BatchItemFailedError):
        codec.call(echo.app, Message("m-1", b"{}", source="orders", enqueued_at=when))
    assert len(echo.messages) == 1


def _sns_event(message: Message) -> dict[str, Any]:
    assert message.enqueued_at is not None
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"arn:aws:sns:us-east-1:123456789012:{message.source}:s1",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message.id,
                    "TopicArn": f"arn:aws:sns:us-east-1:123456789012:{message.source}",
                    "Subject": message.subject,
                    "Message": message.body.decode("utf-8", errors="replace"),
                    "Timestamp": message.enqueued_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "MessageAttributes": {
                        k: {"Type": "String", "Value": v} for k, v in message.attributes.items()
                    },
                },
            }
        ]
    }


@settings(max_examples=75, deadline=None)
@given(message=messages(source="alerts"), subject=st.none() | st.text(max_size=20))
def test_sns_delivers_the_same_message(message: Message, subject: str | None) -> None:
    message = dataclasses.replace(message, subject=subject)
    app = App("sns")
    seen: list[Message] = []

    @app.topic("alerts")
    def on_alert(event: Message) -> None:
        seen.append(event)

    out = polyserve_aws.handler(app)(
        json.loads(json.dumps(_sns_event(message))), FakeLambdaContext("sns")
    )

    # SNS carries text and keeps no delivery count.
    expected = dataclasses.replace(
        message, body=message.body.decode("utf-8", errors="replace").encode(), attempt=1
    )
    assert out is None
    assert seen == [expected]


# -- junk ------------------------------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)

# Keys the recognisers look at, so junk often gets past recognition into translation.
_KEYS = st.sampled_from(
    [
        "version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers",
        "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters",
        "requestContext", "httpMethod", "path", "body", "isBase64Encoded", "Records",
        "eventSource", "EventSource", "detail-type", "source", "detail", "resources", "id",
        "time", "polyserve_schedule", "scheduled_at", "payload", "Sns", "s3", "dynamodb",
        "kinesis", "messageId", "eventSourceARN", "attributes", "elb", "http", "method",
    ]
)  # fmt: skip
_values = st.sampled_from(
    ["2.0", "aws:sqs", "aws:sns", "aws:s3", "aws:dynamodb", "aws:kinesis", "aws.s3",
     "aws.events", "Scheduled Event", "Object Created", "GET", "/x", "INSERT"]
) | _json  # fmt: skip
_junk_objects = st.recursive(
    st.dictionaries(_KEYS | st.text(max_size=8), _values, max_size=8),
    lambda inner: st.dictionaries(_KEYS, inner | st.lists(inner, max_size=3), max_size=6),
    max_leaves=30,
)


def _mutations(draw: st.DrawFn, raw: Any) -> Any:
    """``raw`` with one value somewhere replaced by junk."""
    if isinstance(raw, dict) and raw and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(raw)))
        return {**raw, key: _mutations(draw, raw[key])}
    if isinstance(raw, list) and raw and draw(st.booleans()):
        index = draw(st.integers(0, len(raw) - 1))
        return [*raw[:index], _mutations(draw, raw[index]), *raw[index + 1 :]]
    return draw(_json)


_SAMPLES = [
    "apigw-rest-get.json", "apigw-http-post.json", "function-url-get.json", "alb-single.json",
    "alb-multi.json", "sqs-standard.json", "sqs-fifo.json", "sns.json", "s3-put.json",
    "eventbridge-custom.json", "eventbridge-scheduled-rule.json", "scheduler-input.json",
    "eventbridge-s3-object-created.json", "dynamodb-stream.json", "kinesis.json",
]  # fmt: skip


@st.composite
def _mutated_samples(draw: st.DrawFn) -> Any:
    return _mutations(draw, load(draw(st.sampled_from(_SAMPLES))))


def _check_outcome(event: Any) -> None:
    handler = polyserve_aws.handler(Recorder.catch_all("junk").app)
    status: int | None = None
    try:
        out = handler(event, FakeLambdaContext("junk-request"))
    except PolyserveError as exc:
        status = exc.status
    if status is not None:
        assert 400 <= status < 500
        return
    json.dumps(out)  # whatever comes back must be a valid Lambda response document
    if isinstance(out, dict) and "statusCode" in out:
        assert out["statusCode"] < 500, out
    elif isinstance(out, dict):
        assert set(out) == {"batchItemFailures"}
    else:
        assert out is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=_json | _junk_objects)
def test_junk_never_crashes_the_handler(event: Any) -> None:
    _check_outcome(event)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=_mutated_samples())
def test_damaged_samples_never_crash_the_handler(event: Any) -> None:
    _check_outcome(event)
