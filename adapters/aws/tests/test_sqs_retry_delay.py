"""``Retry(delay=...)`` on SQS: visibility changes with ``honor_retry_delay=True``."""

from __future__ import annotations

import copy
import logging
import math
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load

import polyserve_aws
from polyserve import App, Message, Retry
from polyserve.errors import ConfigurationError
from polyserve_aws import _visibility
from polyserve_aws._visibility import (
    MAX_VISIBILITY_TIMEOUT,
    RetryDelays,
    VisibilityClient,
    VisibilityEntry,
    queue_url,
    visibility_timeout,
)
from polyserve_testkit.servers import HOST, answers_http, free_ports, running, skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from mypy_boto3_sqs.client import SQSClient

    def _a_boto3_client_is_a_visibility_client(client: SQSClient) -> VisibilityClient:
        return client  # checked by mypy: the protocol fits boto3's typed SQS client


ARN = "arn:aws:sqs:eu-west-1:210987654321:adoptions"
URL = "https://sqs.eu-west-1.amazonaws.com/210987654321/adoptions"
OTHER_ARN = "arn:aws:sqs:eu-west-1:210987654321:returns"
OTHER_URL = "https://sqs.eu-west-1.amazonaws.com/210987654321/returns"


@dataclass
class RecordingClient:
    """An SQS client that records ``ChangeMessageVisibilityBatch`` calls.

    It answers every entry as changed, except those whose ``Id`` is in ``refuse``,
    or raises ``error`` when one is set.
    """

    error: Exception | None = None
    refuse: frozenset[str] = frozenset()
    calls: list[tuple[str, list[VisibilityEntry]]] = field(default_factory=list)

    def change_message_visibility_batch(
        self, *, QueueUrl: str, Entries: Sequence[VisibilityEntry]
    ) -> Mapping[str, Any]:
        self.calls.append((QueueUrl, list(Entries)))
        if self.error is not None:
            raise self.error
        failed = [
            {"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": "x"}
            for e in Entries
            if e["Id"] in self.refuse
        ]
        successful = [{"Id": e["Id"]} for e in Entries if e["Id"] not in self.refuse]
        return {"Successful": successful, "Failed": failed}

    @property
    def changes(self) -> list[tuple[str, str, int]]:
        """Every change asked for, as ``(queue URL, receipt handle, timeout)``."""
        return [
            (url, entry["ReceiptHandle"], entry.get("VisibilityTimeout", -1))
            for url, entries in self.calls
            for entry in entries
        ]


def outcome_app() -> App:
    """An app whose queue handler does what each message body says.

    ``ok`` succeeds, ``fail`` raises ``ValueError``, ``retry`` raises ``Retry()`` and
    ``retry:<seconds>`` raises ``Retry(delay=<seconds>)``.
    """
    app = App("retry-delays")

    @app.queue("*")
    def on_message(message: Message) -> None:
        body = message.text
        if body == "fail":
            raise ValueError("the handler failed")
        if body == "retry":
            raise Retry("later")
        if body.startswith("retry:"):
            raise Retry("later", delay=float(body.removeprefix("retry:")))

    return app


def sqs_event(*bodies: str, arn: str = ARN, first: int = 1) -> dict[str, Any]:
    """An SQS event built from the standard sample: one record per body.

    Record ``n`` (counting from ``first``) has message id ``m<n>`` and receipt
    handle ``rh-<n>``.
    """
    template = load("sqs-standard.json")["Records"][0]
    records = []
    for number, body in enumerate(bodies, start=first):
        record = copy.deepcopy(template)
        record.update(
            messageId=f"m{number}",
            receiptHandle=f"rh-{number}",
            body=body,
            eventSourceARN=arn,
            awsRegion=arn.split(":")[3],
        )
        records.append(record)
    return {"Records": records}


def failures(*ids: str) -> dict[str, list[dict[str, str]]]:
    return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}


def run(
    event: dict[str, Any], client: RecordingClient, context: FakeLambdaContext | None = None
) -> Any:
    handler = polyserve_aws.handler(outcome_app(), sqs_client=client, honor_retry_delay=True)
    return handler(event, context or FakeLambdaContext())


# The option


def test_delayed_records_get_their_visibility_changed() -> None:
    client = RecordingClient()
    event = sqs_event("ok", "retry:30", "fail", "retry", "retry:0")

    out = run(event, client)

    assert out == failures("m2", "m3", "m4", "m5")
    assert client.calls == [
        (
            URL,
            [
                {"Id": "1", "ReceiptHandle": "rh-2", "VisibilityTimeout": 30},
                {"Id": "4", "ReceiptHandle": "rh-5", "VisibilityTimeout": 0},
            ],
        )
    ]


@pytest.mark.parametrize(
    ("delay", "timeout"),
    [
        (0, 0),
        (0.001, 1),
        (1, 1),
        (1.5, 2),
        (29.0001, 30),
        (43_199.5, 43_200),
        (43_200, 43_200),
        (43_201, 43_200),
        (1e12, 43_200),
        (math.inf, 43_200),
    ],
)
def test_the_timeout_is_the_delay_rounded_up_and_clamped(delay: float, timeout: int) -> None:
    client = RecordingClient()

    out = run(sqs_event(f"retry:{delay}"), client)

    assert out == failures("m1")
    assert client.changes == [(URL, "rh-1", timeout)]
    assert visibility_timeout(delay) == timeout


def test_visibility_timeout_is_never_negative_and_refuses_nan() -> None:
    assert MAX_VISIBILITY_TIMEOUT == 12 * 60 * 60
    assert visibility_timeout(-5) == 0
    with pytest.raises(ValueError, match="NaN"):
        visibility_timeout(math.nan)


def test_calls_hold_at_most_ten_entries_and_one_queue_each() -> None:
    client = RecordingClient()
    records = (
        sqs_event(*[f"retry:{n}" for n in range(1, 13)])["Records"]
        + sqs_event(*[f"retry:{n}" for n in range(13, 24)], arn=OTHER_ARN, first=13)["Records"]
    )
    # Mix the two queues: the grouping must not depend on the records' order.
    event = {"Records": records[::2] + records[1::2]}

    out = run(event, client)

    assert len(out["batchItemFailures"]) == 23
    assert [(url, len(entries)) for url, entries in client.calls] == [
        (URL, 10),
        (URL, 2),
        (OTHER_URL, 10),
        (OTHER_URL, 1),
    ]
    assert sorted(client.changes) == sorted(
        (URL if n <= 12 else OTHER_URL, f"rh-{n}", n) for n in range(1, 24)
    )
    # Entry ids are unique in each call, as SQS requires.
    for _, entries in client.calls:
        assert len({e["Id"] for e in entries}) == len(entries)


def test_entry_ids_are_the_records_positions() -> None:
    client = RecordingClient()

    run(sqs_event("ok", "ok", "retry:3"), client)

    assert client.calls == [(URL, [{"Id": "2", "ReceiptHandle": "rh-3", "VisibilityTimeout": 3}])]


def test_a_message_delivered_twice_in_one_batch_gets_both_handles_changed() -> None:
    client = RecordingClient()
    event = sqs_event("retry:5", "retry:7")
    event["Records"][1]["messageId"] = "m1"

    out = run(event, client)

    assert out == failures("m1", "m1")
    assert client.changes == [(URL, "rh-1", 5), (URL, "rh-2", 7)]


def test_fifo_changes_only_the_record_that_asked() -> None:
    client = RecordingClient()
    event = sqs_event("ok", "retry:10", "retry:20", arn=ARN + ".fifo")

    out = run(event, client)

    # The third record is never started: an ordered batch stops at its first failure.
    assert out == failures("m2", "m3")
    assert client.changes == [(URL + ".fifo", "rh-2", 10)]


# Nothing happens without the option or without delays


def test_without_the_option_nothing_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("visibility changes were attempted without the option")

    monkeypatch.setattr(RetryDelays, "apply", forbidden)
    monkeypatch.setattr(RetryDelays, "_new_client", forbidden)
    handler = polyserve_aws.handler(outcome_app())

    out = handler(sqs_event("retry:30", "ok", "retry:0"), FakeLambdaContext())

    assert out == failures("m1", "m3")


def test_a_client_without_the_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="honor_retry_delay"):
        polyserve_aws.handler(outcome_app(), sqs_client=RecordingClient())


@pytest.mark.parametrize(
    "bodies",
    [
        ("ok", "ok"),
        ("fail", "ok"),
        ("retry", "fail"),
    ],
)
def test_failures_without_a_delay_call_nothing(bodies: tuple[str, ...]) -> None:
    client = RecordingClient()

    out = run(sqs_event(*bodies), client)

    assert out == failures(*[f"m{n}" for n, b in enumerate(bodies, 1) if b != "ok"])
    assert client.calls == []


def test_no_client_is_created_until_a_record_has_a_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []
    client = RecordingClient()

    def new_client(self: RetryDelays, region: str) -> VisibilityClient:
        created.append(region)
        return client

    monkeypatch.setattr(RetryDelays, "_new_client", new_client)
    handler = polyserve_aws.handler(outcome_app(), honor_retry_delay=True)

    handler(sqs_event("ok", "fail", "retry"), FakeLambdaContext())
    assert created == []

    handler(sqs_event("retry:4"), FakeLambdaContext())
    handler(sqs_event("retry:6"), FakeLambdaContext())
    assert created == ["eu-west-1"]
    assert client.changes == [(URL, "rh-1", 4), (URL, "rh-1", 6)]


def test_other_sources_are_untouched_by_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    app = App("streams")
    seen: list[Message] = []

    @app.stream("*")
    def on_record(message: Message) -> None:
        seen.append(message)
        raise Retry(delay=30)

    client = RecordingClient()
    handler = polyserve_aws.handler(app, sqs_client=client, honor_retry_delay=True)

    out = handler(load("kinesis.json"), FakeLambdaContext())

    assert out["batchItemFailures"]
    assert seen
    assert client.calls == []


# Failures of the change never change the response


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("connection refused"),
        ValueError("bad parameter"),
        PermissionError("AccessDenied"),
    ],
)
def test_a_failing_client_leaves_the_response_unchanged(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    client = RecordingClient(error=error)
    event = sqs_event("retry:30", "ok", "fail", *[f"retry:{n}" for n in range(12)])

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = run(event, client)

    assert out == failures("m1", "m3", *[f"m{n}" for n in range(4, 16)])
    assert len(client.calls) == 1  # the first failure stops the rest
    assert "ChangeMessageVisibilityBatch failed" in caplog.text
    assert type(error).__name__ in caplog.text
    assert '"unchanged": 13' in caplog.text


def test_entries_sqs_refuses_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient(refuse=frozenset({"0"}))

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = run(sqs_event("retry:30", "retry:40"), client)

    assert out == failures("m1", "m2")
    assert client.changes == [(URL, "rh-1", 30), (URL, "rh-2", 40)]
    assert "SQS refused some visibility changes" in caplog.text
    assert '"message_id": "m1"' in caplog.text
    assert "ReceiptHandleIsInvalid" in caplog.text


def test_a_client_that_cannot_be_created_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "botocore.session", None)  # import fails
    handler = polyserve_aws.handler(outcome_app(), honor_retry_delay=True)

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = handler(sqs_event("retry:30", "ok"), FakeLambdaContext())

    assert out == failures("m1")
    assert "MissingDependencyError" in caplog.text


def test_a_malformed_client_response_is_not_an_error() -> None:
    class Silent:
        def change_message_visibility_batch(
            self, *, QueueUrl: str, Entries: Sequence[VisibilityEntry]
        ) -> Mapping[str, Any]:
            return {"Failed": "not a list of entries"}

    handler = polyserve_aws.handler(outcome_app(), sqs_client=Silent(), honor_retry_delay=True)

    assert handler(sqs_event("retry:3"), FakeLambdaContext()) == failures("m1")


@pytest.mark.parametrize(
    "change",
    [
        {"receiptHandle": None},
        {"receiptHandle": ""},
        {"eventSourceARN": "arn:aws:sns:eu-west-1:210987654321:adoptions"},
    ],
)
def test_records_without_a_usable_handle_or_arn_are_skipped(
    change: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = RecordingClient()
    event = sqs_event("retry:30", "retry:40")
    event["Records"][0].update(change)

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = run(event, client)

    assert out == failures("m1", "m2")
    assert client.changes == [(URL, "rh-2", 40)]
    assert '"message_ids": ["m1"]' in caplog.text


def test_a_delay_that_is_not_a_number_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient()

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = run(sqs_event("retry:nan", "retry:40"), client)

    assert out == failures("m1", "m2")
    assert client.changes == [(URL, "rh-2", 40)]
    assert '"message_ids": ["m1"]' in caplog.text


def test_no_call_starts_without_the_time_for_it(caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient()
    context = FakeLambdaContext(remaining_ms=int(_visibility.CALL_TIME * 1000) - 500)

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = run(sqs_event("retry:30", "fail"), client, context)

    assert out == failures("m1", "m2")
    assert client.calls == []
    assert "too little time left" in caplog.text


def test_retry_delays_apply_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    from polyserve.batch import ItemFailure
    from polyserve_aws._context import to_context

    delays = RetryDelays(RecordingClient())
    context = to_context(FakeLambdaContext())

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        delays.apply(None, [ItemFailure("m1", "retry", retry_delay=1.0)], context)  # type: ignore[arg-type]  # records that are not a sequence at all

    assert "could not change SQS visibility" in caplog.text


# Queue URLs


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        (ARN, URL),
        (
            "arn:aws:sqs:us-east-1:123456789012:orders.fifo",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo",
        ),
        (
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:orders",
            "https://sqs.us-gov-west-1.amazonaws.com/123456789012/orders",
        ),
        (
            "arn:aws-cn:sqs:cn-north-1:123456789012:orders",
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/orders",
        ),
    ],
)
def test_queue_url_from_arn(arn: str, url: str) -> None:
    assert queue_url(arn) == url


@pytest.mark.parametrize(
    "arn",
    [
        "adoptions",
        "arn:aws:sns:eu-west-1:210987654321:adoptions",
        "arn:aws:sqs:eu-west-1::adoptions",
        "arn:aws:sqs:eu-west-1:210987654321",
        "arn:aws:sqs:eu-west-1:210987654321:a:b",
    ],
)
def test_queue_url_refuses_other_arns(arn: str) -> None:
    with pytest.raises(ValueError, match="not an SQS queue ARN"):
        queue_url(arn)


def test_the_option_imports_no_botocore() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import polyserve_aws
        from polyserve import App
        handler = polyserve_aws.handler(App("cold"), honor_retry_delay=True)
        print(json.dumps([m for m in ("boto3", "botocore") if m in sys.modules]))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


# Against an SQS-compatible server: moto's standalone server


@dataclass(frozen=True, slots=True)
class SqsServer:
    endpoint_url: str
    region: str = "us-east-1"
    account: str = "123456789012"  # moto's default account
    access_key_id: str = "test"
    secret_access_key: str = "test"

    def client(self) -> SQSClient:
        import boto3

        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


@pytest.fixture(scope="module")
def sqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqsServer]:
    """moto's server (``pip install 'moto[server]'``), on a free loopback port."""
    executable = shutil.which("moto_server")
    if executable is None:
        skip_or_fail("moto_server is not on PATH; pip install 'moto[server]'")
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("moto")
    command = [executable, "-H", HOST, "-p", str(port)]
    with running("moto_server", command, lambda: answers_http(port), workdir):
        yield SqsServer(f"http://{HOST}:{port}")


def _lambda_records(server: SqsServer, queue: str, messages: list[Any]) -> dict[str, Any]:
    """The event Lambda's poller would build from messages received from ``queue``."""
    arn = f"arn:aws:sqs:{server.region}:{server.account}:{queue}"
    records = []
    for message in messages:
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": server.region,
            }
        )
    return {"Records": records}


def _receive_all(client: SQSClient, url: str, count: int) -> list[Any]:
    received: list[Any] = []
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        answer = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
        )
        received += answer.get("Messages", [])
    assert len(received) == count
    return received


def _bodies_visible(client: SQSClient, url: str, wait: int) -> list[str]:
    answer = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    return sorted(m["Body"] for m in answer.get("Messages", []))


def _use_created_client(monkeypatch: pytest.MonkeyPatch, endpoint_url: str, tmp: Path) -> None:
    """Point the botocore client that polyserve creates at ``endpoint_url``, with test keys."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    # Nothing from the machine's own AWS configuration.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        monkeypatch.delenv(name, raising=False)


def test_an_unreachable_sqs_leaves_the_response_unchanged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (port,) = free_ports(1)  # given out and closed again: nothing listens there
    _use_created_client(monkeypatch, f"http://{HOST}:{port}", tmp_path)
    handler = polyserve_aws.handler(outcome_app(), honor_retry_delay=True)

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = handler(sqs_event("retry:30", "ok", "retry:5"), FakeLambdaContext())

    assert out == failures("m1", "m3")
    assert "ChangeMessageVisibilityBatch failed" in caplog.text
    assert "EndpointConnectionError" in caplog.text


@pytest.mark.integration
@pytest.mark.parametrize("client_kind", ["given", "created"])
def test_delays_reach_a_real_queue(
    sqs_server: SqsServer, client_kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sqs = sqs_server.client()
    queue = f"adoptions-{client_kind}"
    url = sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    # 16 messages, 13 of them delayed: two ChangeMessageVisibilityBatch calls.
    delayed = ["retry:0", "retry:2.5", *[f"retry:{n}" for n in range(300, 311)]]
    bodies = ["ok", "fail", "retry", *delayed]
    for start in range(0, len(bodies), 10):
        entries = bodies[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(entries)]
        )
    event = _lambda_records(sqs_server, queue, _receive_all(sqs, url, len(bodies)))
    given: VisibilityClient | None = sqs
    if client_kind == "created":
        given = None
        _use_created_client(monkeypatch, sqs_server.endpoint_url, tmp_path)
    handler = polyserve_aws.handler(outcome_app(), sqs_client=given, honor_retry_delay=True)

    out = handler(event, FakeLambdaContext())
    handled_at = time.monotonic()

    message_ids = {r["body"]: r["messageId"] for r in event["Records"]}
    assert sorted(f["itemIdentifier"] for f in out["batchItemFailures"]) == sorted(
        message_ids[b] for b in bodies if b != "ok"
    )
    # Delay 0 is visible again at once, delay 2.5 after 3 s. The others keep the
    # queue's 60 s ("fail", "retry", and "ok", which Lambda would delete) or 300 s+.
    assert _bodies_visible(sqs, url, wait=0) == ["retry:0"]
    assert _bodies_visible(sqs, url, wait=10) == ["retry:2.5"]
    assert time.monotonic() - handled_at >= 2.0
    assert _bodies_visible(sqs, url, wait=1) == []


@pytest.mark.integration
def test_a_refused_receipt_handle_keeps_the_response(
    sqs_server: SqsServer, caplog: pytest.LogCaptureFixture
) -> None:
    sqs = sqs_server.client()
    queue = "adoptions-refused"
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="retry:30")
    event = _lambda_records(sqs_server, queue, _receive_all(sqs, url, 1))
    event["Records"][0]["receiptHandle"] = "not-a-receipt-handle"
    handler = polyserve_aws.handler(outcome_app(), sqs_client=sqs, honor_retry_delay=True)

    with caplog.at_level(logging.WARNING, logger="polyserve"):
        out = handler(event, FakeLambdaContext())

    assert out == failures(event["Records"][0]["messageId"])
    assert "SQS refused some visibility changes" in caplog.text
    assert "ReceiptHandleIsInvalid" in caplog.text
