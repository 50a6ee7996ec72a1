"""No Pub/Sub message is lost: the GCP adapter behind a push subscription of the Pub/Sub emulator.

A real functions-framework server serves ``polyserve_gcp.http(app)`` from a module written into
a temporary directory. The emulator pushes every message of a topic to ``/_pubsub/orders``, with
a dead-letter policy (``maxDeliveryAttempts`` 5). The served module
records every handler call and every answer it sends to a file, which the tests read back.

Kinds of order published:

- ``ok``: handled on the first delivery;
- ``flaky``: the handler fails on its first two deliveries (500) and succeeds on the third;
- ``poison``: the handler always fails (500);
- ``bad-field`` and ``bad-json``: the payload does not validate (422) or is not JSON (400).

Pub/Sub redelivers after any non-2xx answer, so the last three kinds reach the dead-letter topic
after five deliveries. Every order ends processed once or dead-lettered.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from polyserve_testkit.servers import HOST, answers_http, free_ports, running

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from polyserve_testkit.servers import GcloudEmulator

pytestmark = pytest.mark.integration

MAX_DELIVERY_ATTEMPTS = 5  # the smallest Pub/Sub accepts
FLAKY_FAILURES = 2
SCENARIO_TIMEOUT = 30.0
PLAN = {"ok": 8, "flaky": 6, "poison": 3, "bad-field": 2, "bad-json": 1}
# The answer each kind gets while it fails.
FAILURE_STATUS = {"flaky": 500, "poison": 500, "bad-field": 422, "bad-json": 400}
DEAD_LETTER_KINDS = frozenset({"poison", "bad-field", "bad-json"})

# The module functions-framework serves. It keeps its records next to itself, so the server
# needs no settings; one worker process serves every request, so the counts are shared.
APP_SOURCE = '''\
"""Orders, served over Pub/Sub push; every call and answer is recorded in records.jsonl."""

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import flask

import polyserve_gcp
from polyserve import App, Message

RECORDS = Path(__file__).with_name("records.jsonl")
FLAKY_FAILURES = 2

app = App("orders")
_lock = threading.Lock()
_deliveries: dict[str, int] = {}


@dataclass(frozen=True)
class Order:
    number: int
    kind: str


def record(**fields: object) -> None:
    with _lock, RECORDS.open("a", encoding="utf-8") as out:
        out.write(json.dumps(fields) + "\\n")


@app.topic("orders")
def on_order(order: Order, msg: Message) -> None:
    with _lock:
        delivery = _deliveries[msg.id] = _deliveries.get(msg.id, 0) + 1
    record(event="call", id=msg.id, attempt=msg.attempt, delivery=delivery)
    if order.kind == "poison":
        raise RuntimeError(f"order {order.number} can never be filled")
    if order.kind == "flaky" and delivery <= FLAKY_FAILURES:
        raise ConnectionError("the inventory service did not answer")
    record(event="processed", id=msg.id)


serve = polyserve_gcp.http(app)


def handle_http(request: flask.Request) -> flask.Response:
    envelope = request.get_json(silent=True)
    response = serve(request)
    if isinstance(envelope, dict) and isinstance(envelope.get("message"), dict):
        record(
            event="answer",
            id=envelope["message"].get("messageId"),
            delivery_attempt=envelope.get("deliveryAttempt"),
            status=response.status_code,
        )
    return response
'''


@dataclass(frozen=True)
class Outcome:
    """What happened to the published orders, from the server's records and the dead letters."""

    kinds: dict[str, str]  # message id -> kind
    calls: dict[str, list[dict[str, Any]]]  # message id -> handler calls, in order
    answers: dict[str, list[dict[str, Any]]]  # message id -> answers sent, in order
    processed: dict[str, int]  # message id -> times processed
    dead_letters: dict[str, dict[str, str]]  # message id -> attributes of its dead letter

    def counts(self) -> dict[str, int]:
        accounted = set(self.processed) | set(self.dead_letters)
        return {
            "sent": len(self.kinds),
            "processed": len(self.processed),
            "set_aside": 0,
            "dead_lettered": len(self.dead_letters),
            "lost": len(set(self.kinds) - accounted),
        }

    def ids(self, *kinds: str) -> set[str]:
        return {message_id for message_id, kind in self.kinds.items() if kind in kinds}


class Emulator:
    """The emulator's REST API for one project."""

    def __init__(self, emulator: GcloudEmulator, client: httpx.Client) -> None:
        self.client = client
        self.project = f"projects/{emulator.project_id}"
        self.api = f"{emulator.url}/v1/{self.project}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.request(method, f"{self.api}/{path}", json=body)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        data: dict[str, Any] = response.json() if response.content else {}
        return data

    def topic(self, name: str) -> str:
        return f"{self.project}/topics/{name}"

    def pull(self, subscription: str) -> list[dict[str, Any]]:
        """The messages waiting in ``subscription``, acknowledged; empty at once if none."""
        # Without returnImmediately an empty pull waits for a message to arrive.
        pulled = self.call(
            "POST",
            f"subscriptions/{subscription}:pull",
            {"maxMessages": 100, "returnImmediately": True},
        )
        received: list[dict[str, Any]] = pulled.get("receivedMessages", [])
        if received:
            ack_ids = [item["ackId"] for item in received]
            self.call("POST", f"subscriptions/{subscription}:acknowledge", {"ackIds": ack_ids})
        return [item["message"] for item in received]


def order_body(kind: str, number: int) -> bytes:
    if kind == "bad-field":
        return json.dumps({"number": f"number {number}", "kind": "ok"}).encode()
    if kind == "bad-json":
        return f'{{"number": {number}, "kind": '.encode()
    return json.dumps({"number": number, "kind": kind}).encode()


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    # A line still being written has no newline yet; it is read next time.
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def wait_for(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s", pytrace=False)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def outcome(pubsub_emulator: GcloudEmulator, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """Serve the app, publish the orders, and wait until each is processed or dead-lettered."""
    workdir = tmp_path_factory.mktemp("pubsub-e2e")
    source = workdir / "main.py"
    source.write_text(APP_SOURCE, encoding="utf-8")
    records = workdir / "records.jsonl"
    (port,) = free_ports(1)
    command = [
        sys.executable, "-m", "functions_framework",
        "--source", str(source), "--target", "handle_http", "--signature-type", "http",
        "--host", HOST, "--port", str(port),
    ]  # fmt: skip
    # Names of this run only: the session's emulator may hold other tests' topics.
    run = uuid.uuid4().hex[:8]
    topic, dead_topic = f"orders-{run}", f"orders-{run}-dead"
    push, dead_pull = f"orders-{run}-push", f"orders-{run}-dead-pull"
    numbered = enumerate((kind for kind, count in PLAN.items() for _ in range(count)), start=1)
    bodies = [(kind, order_body(kind, number)) for number, kind in numbered]
    dead_letters: dict[str, dict[str, str]] = {}

    with (
        running("functions-framework", command, lambda: answers_http(port), workdir),
        httpx.Client(timeout=10.0, trust_env=False) as client,
    ):
        emulator = Emulator(pubsub_emulator, client)
        try:
            emulator.call("PUT", f"topics/{topic}")
            emulator.call("PUT", f"topics/{dead_topic}")
            # Before anything is dead-lettered: a topic keeps nothing for later subscribers.
            emulator.call(
                "PUT", f"subscriptions/{dead_pull}", {"topic": emulator.topic(dead_topic)}
            )
            emulator.call(
                "PUT",
                f"subscriptions/{push}",
                {
                    "topic": emulator.topic(topic),
                    "pushConfig": {"pushEndpoint": f"http://{HOST}:{port}/_pubsub/orders"},
                    "ackDeadlineSeconds": 10,
                    "deadLetterPolicy": {
                        "deadLetterTopic": emulator.topic(dead_topic),
                        "maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS,
                    },
                    # No retryPolicy: the emulator accepts one, but then stops redelivering
                    # messages that keep failing after their third delivery; without one it
                    # redelivers about once a second.
                },
            )
            messages = [{"data": base64.b64encode(body).decode()} for _, body in bodies]
            published = emulator.call("POST", f"topics/{topic}:publish", {"messages": messages})
            ids: list[str] = published["messageIds"]
            kinds = {message_id: kind for message_id, (kind, _) in zip(ids, bodies, strict=True)}
            by_body = {body: message_id for message_id, (_, body) in zip(ids, bodies, strict=True)}

            def settled() -> bool:
                for message in emulator.pull(dead_pull):
                    body = base64.b64decode(message.get("data", ""))
                    dead_letters[by_body.get(body, f"unknown {body!r}")] = message["attributes"]
                # The server records its answer before sending it, so a 2xx here is final.
                acknowledged = {
                    r["id"]
                    for r in read_records(records)
                    if r["event"] == "answer" and 200 <= r["status"] < 300
                }
                return acknowledged | set(dead_letters) >= set(kinds)

            wait_for(settled, SCENARIO_TIMEOUT, "not every order was processed or dead-lettered")
        finally:
            for path in (f"subscriptions/{push}", f"subscriptions/{dead_pull}"):
                client.delete(f"{emulator.api}/{path}")
            for path in (f"topics/{topic}", f"topics/{dead_topic}"):
                client.delete(f"{emulator.api}/{path}")

    calls: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    answers: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    processed: defaultdict[str, int] = defaultdict(int)
    for record in read_records(records):
        if record["event"] == "call":
            calls[record["id"]].append(record)
        elif record["event"] == "answer":
            answers[record["id"]].append(record)
        elif record["event"] == "processed":
            processed[record["id"]] += 1
    return Outcome(kinds, dict(calls), dict(answers), dict(processed), dead_letters)


def test_every_message_is_processed_once_or_dead_lettered(
    outcome: Outcome, record_property: Callable[[str, object], None]
) -> None:
    counts = outcome.counts()
    summary = " ".join(f"{key}={value}" for key, value in counts.items())
    print(f"\npubsub push: {summary}")
    record_property("pubsub push", summary)

    assert counts["sent"] == sum(PLAN.values())
    assert counts["lost"] == 0
    assert not set(outcome.processed) & set(outcome.dead_letters)
    assert set(outcome.processed) == outcome.ids("ok", "flaky")
    assert all(times == 1 for times in outcome.processed.values())
    assert set(outcome.dead_letters) == outcome.ids(*DEAD_LETTER_KINDS)
    for attributes in outcome.dead_letters.values():
        delivered = attributes["CloudPubSubDeadLetterSourceDeliveryCount"]
        assert delivered == str(MAX_DELIVERY_ATTEMPTS)


def test_failed_deliveries_get_non_2xx_and_are_redelivered(outcome: Outcome) -> None:
    for message_id, kind in outcome.kinds.items():
        statuses = [answer["status"] for answer in outcome.answers[message_id]]
        if kind == "ok":
            assert statuses == [204]
        elif kind == "flaky":
            assert statuses == [500] * FLAKY_FAILURES + [204]
        else:
            assert statuses == [FAILURE_STATUS[kind]] * MAX_DELIVERY_ATTEMPTS
    # The handler ran on every delivery of a valid order, and never for an invalid one.
    expected_calls = {"ok": 1, "flaky": FLAKY_FAILURES + 1, "poison": MAX_DELIVERY_ATTEMPTS}
    for kind, count in expected_calls.items():
        for message_id in outcome.ids(kind):
            deliveries = [call["delivery"] for call in outcome.calls[message_id]]
            assert deliveries == list(range(1, count + 1))
    for message_id in outcome.ids("bad-field", "bad-json"):
        assert message_id not in outcome.calls


def test_delivery_attempt_reaches_the_handler(outcome: Outcome) -> None:
    # Message.attempt is the push request's deliveryAttempt where the server sends one, and
    # 1 where it does not: the emulator reports deliveryAttempt on pull only, so over push
    # it may send none even with a dead-letter policy.
    for message_id in outcome.ids("flaky", "poison"):
        calls, answers = outcome.calls[message_id], outcome.answers[message_id]
        assert len(calls) == len(answers)
        for call, answer in zip(calls, answers, strict=True):
            assert call["attempt"] == (answer["delivery_attempt"] or 1)
