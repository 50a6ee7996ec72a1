"""No Storage Queue message is lost: the Azure adapter, a real queue service, the host's rules.

Orders go to an ``orders`` queue in Azurite. `QueueHost` (``testkit/src/polyserve_testkit/azure_queue_host.py``)
runs the queue function that ``polyserve_azure.function_app`` generates, as the Functions host
does: it receives with a visibility timeout, deletes what succeeded, lets failures come back with
a higher dequeue count, and moves a message to ``orders-poison`` when it fails on dequeue
``maxDequeueCount``. Every message is then accounted for from what the app recorded and what is
left in the real queues.

Kinds of order sent:

- ``ok``: handled on the first delivery;
- ``flaky``: the handler fails on deliveries 1 and 2 and succeeds on 3;
- ``poison``: the handler always fails;
- ``bad-field`` and ``bad-json``: the payload does not validate, so the handler never runs.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

import polyserve_azure
from polyserve import App, Context, Message
from polyserve_testkit.azure_queue_host import POISON_SUFFIX, QueueHost, queue_client
from polyserve_testkit.servers import skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Callable

    from azure.storage.queue import QueueClient

    from polyserve_testkit.azure_queue_host import Delivery
    from polyserve_testkit.servers import AzuriteServer

pytestmark = pytest.mark.integration

QUEUE = "orders"
POISON_QUEUE = QUEUE + POISON_SUFFIX
DEAD_LETTER = "dead-letter"
MAX_ATTEMPTS = 3
FLAKY_FAILURES = 2
VISIBILITY_TIMEOUT = 1
RUN_TIMEOUT = 40.0
CONNECTION_SETTING = "AzureWebJobsStorage"
INVALID_KINDS = frozenset({"bad-field", "bad-json"})
# What the hook receives for each kind of poison order.
ERRORS = {
    "poison": "RuntimeError",
    "bad-field": "EventValidationError",
    "bad-json": "MalformedEventError",
}


@dataclass(frozen=True)
class Order:
    """The payload the handler declares; ``number`` must be an integer."""

    number: int
    kind: str


@dataclass
class Ledger:
    """What the app saw: the attempt of every handler call, and what it processed or set aside."""

    attempts: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    processed: Counter[str] = field(default_factory=Counter)
    set_aside: Counter[str] = field(default_factory=Counter)
    poison_attempts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Queues:
    """The test's queues in Azurite, emptied before the test."""

    connection_string: str

    def client(self, name: str) -> QueueClient:
        return queue_client(self.connection_string, name)

    def stored(self, name: str) -> list[bytes]:
        """The bodies of every message in queue ``name`` (none if it does not exist).

        Every message must be visible, and there must be at most 32.
        """
        from azure.core.exceptions import ResourceNotFoundError

        with self.client(name) as client:
            try:
                count = client.get_queue_properties().approximate_message_count
            except ResourceNotFoundError:
                return []
            stored = [bytes(m.content) for m in client.peek_messages(max_messages=32)]
        assert len(stored) == count, f"{name} holds {count} messages, {len(stored)} visible"
        return stored


@pytest.fixture
def queues(azurite: AzuriteServer) -> Queues:
    if importlib.util.find_spec("azure.storage.queue") is None:
        skip_or_fail("azure-storage-queue is not installed (it belongs in the test dependencies)")
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueServiceClient

    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    with service:
        for name in (QUEUE, POISON_QUEUE, DEAD_LETTER):
            with contextlib.suppress(ResourceNotFoundError):
                service.delete_queue(name)
        service.create_queue(QUEUE)
        service.create_queue(DEAD_LETTER)
    return Queues(azurite.connection_string)


def order_bodies(plan: dict[str, int]) -> list[tuple[str, bytes]]:
    """``(kind, body)`` for every order of ``plan`` (kind -> how many); every body is unique."""
    bodies: list[tuple[str, bytes]] = []
    for kind, count in plan.items():
        for i in range(count):
            number = len(bodies) + 1
            if kind == "bad-field":
                body = json.dumps({"number": f"number {number}", "kind": "ok"}).encode()
            elif kind == "bad-json":
                body = f'{{"number": {number}, "kind": '.encode()
            else:
                body = json.dumps({"number": number, "kind": kind, "copy": i}).encode()
            bodies.append((kind, body))
    return bodies


def send(queues: Queues, bodies: list[tuple[str, bytes]]) -> dict[str, tuple[str, bytes]]:
    """Send the orders; return message id -> (kind, body)."""
    sent: dict[str, tuple[str, bytes]] = {}
    with queues.client(QUEUE) as client:
        for kind, body in bodies:
            sent[client.send_message(body).id] = (kind, body)
    return sent


def build_app(ledger: Ledger, dead_letter: QueueClient | None) -> App:
    """The orders app; with ``dead_letter``, poison orders are written there and set aside."""
    app = App("orders")

    def on_order(order: Order, msg: Message) -> None:
        ledger.attempts[msg.id].append(msg.attempt)
        if order.kind == "poison":
            raise RuntimeError(f"order {order.number} can never be filled")
        if order.kind == "flaky" and msg.attempt <= FLAKY_FAILURES:
            raise ConnectionError("the inventory service did not answer")
        ledger.processed[msg.id] += 1

    if dead_letter is None:
        app.queue(QUEUE, max_attempts=MAX_ATTEMPTS)(on_order)
        return app

    def to_dead_letter(event: Message, exc: BaseException, ctx: Context) -> None:
        record = {
            "id": event.id,
            "attempt": event.attempt,
            "error": type(exc).__name__,
            "body": base64.b64encode(event.body).decode(),
        }
        dead_letter.send_message(json.dumps(record).encode())
        ledger.set_aside[event.id] += 1
        ledger.poison_attempts[event.id] = event.attempt

    app.queue(QUEUE, max_attempts=MAX_ATTEMPTS, on_poison=to_dead_letter)(on_order)
    return app


def run_host(queues: Queues, app: App, max_dequeue_count: int) -> list[Delivery]:
    functions = polyserve_azure.function_app(app)
    settings = {CONNECTION_SETTING: queues.connection_string}
    with QueueHost(
        functions,
        settings,
        visibility_timeout=VISIBILITY_TIMEOUT,
        max_dequeue_count=max_dequeue_count,
    ) as host:
        return host.run_until_empty(RUN_TIMEOUT)


def dequeue_counts(deliveries: list[Delivery]) -> dict[str, list[int]]:
    counts: defaultdict[str, list[int]] = defaultdict(list)
    for delivery in deliveries:
        counts[delivery.message_id].append(delivery.dequeue_count)
    return counts


def ids_of(sent: dict[str, tuple[str, bytes]], *kinds: str) -> set[str]:
    return {message_id for message_id, (kind, _) in sent.items() if kind in kinds}


def account(
    sent: dict[str, tuple[str, bytes]], ledger: Ledger, host_poison: list[bytes]
) -> dict[str, int]:
    """The counts of the summary line; a poison-queue copy is matched to its order by body."""
    by_body = {body: message_id for message_id, (_, body) in sent.items()}
    poisoned = {by_body[body] for body in host_poison if body in by_body}
    lost = set(sent) - set(ledger.processed) - set(ledger.set_aside) - poisoned
    return {
        "sent": len(sent),
        "processed": len(ledger.processed),
        "set_aside": len(ledger.set_aside),
        "host_poison": len(host_poison),
        "lost": len(lost),
    }


def report(
    record_property: Callable[[str, object], None], label: str, counts: dict[str, int]
) -> None:
    """Print the one-line summary (shown with ``-s``) and record it in the JUnit XML report."""
    summary = " ".join(f"{key}={value}" for key, value in counts.items())
    print(f"\n{label}: {summary}")
    record_property(label, summary)


def test_every_message_is_processed_once_or_set_aside(
    queues: Queues, record_property: Callable[[str, object], None]
) -> None:
    ledger = Ledger()
    plan = {"ok": 12, "flaky": 8, "poison": 5, "bad-field": 3, "bad-json": 2}
    with queues.client(DEAD_LETTER) as dead_letter:
        app = build_app(ledger, dead_letter)
        sent = send(queues, order_bodies(plan))
        deliveries = run_host(queues, app, max_dequeue_count=5)

    dead_letters = [json.loads(body) for body in queues.stored(DEAD_LETTER)]
    host_poison = queues.stored(POISON_QUEUE)
    counts = account(sent, ledger, host_poison)
    report(record_property, "azure storage queue with on_poison", counts)
    processed = set(ledger.processed)
    set_aside = set(ledger.set_aside)

    assert counts["sent"] == sum(plan.values())
    assert counts["lost"] == 0
    assert counts["processed"] + counts["set_aside"] + counts["host_poison"] == counts["sent"]
    assert not host_poison
    assert not processed & set_aside
    assert processed | set_aside == set(sent)
    # Processed exactly once, including the orders that failed twice first.
    assert processed == ids_of(sent, "ok", "flaky")
    assert all(count == 1 for count in ledger.processed.values())
    # Set aside exactly once, on the last attempt, and written to the real dead-letter queue.
    assert set_aside == ids_of(sent, "poison", *INVALID_KINDS)
    assert all(count == 1 for count in ledger.set_aside.values())
    assert set(ledger.poison_attempts.values()) == {MAX_ATTEMPTS}
    assert sorted(record["id"] for record in dead_letters) == sorted(set_aside)
    for record in dead_letters:
        kind, body = sent[record["id"]]
        assert base64.b64decode(record["body"]) == body
        assert record["attempt"] == MAX_ATTEMPTS
        assert record["error"] == ERRORS[kind]

    # The handler saw the dequeue count rise, as Message.attempt.
    for message_id in ids_of(sent, "ok"):
        assert ledger.attempts[message_id] == [1]
    for message_id in ids_of(sent, "flaky", "poison"):
        assert ledger.attempts[message_id] == [1, 2, 3]
    for message_id in ids_of(sent, *INVALID_KINDS):
        assert message_id not in ledger.attempts

    # The host delivered every retried message three times; the last delivery completed,
    # since a set-aside message is acknowledged.
    seen_by_host = dequeue_counts(deliveries)
    for message_id, (kind, _) in sent.items():
        assert seen_by_host[message_id] == ([1] if kind == "ok" else [1, 2, 3])
    last = {d.message_id: d.outcome for d in deliveries}
    assert set(last.values()) == {"completed"}


def test_without_on_poison_the_host_moves_failing_messages_to_the_poison_queue(
    queues: Queues, record_property: Callable[[str, object], None]
) -> None:
    ledger = Ledger()
    plan = {"ok": 4, "flaky": 3, "poison": 2, "bad-field": 1, "bad-json": 1}
    app = build_app(ledger, dead_letter=None)
    sent = send(queues, order_bodies(plan))
    deliveries = run_host(queues, app, max_dequeue_count=5)

    host_poison = queues.stored(POISON_QUEUE)
    counts = account(sent, ledger, host_poison)
    report(record_property, "azure storage queue without on_poison", counts)
    processed = set(ledger.processed)

    assert counts["lost"] == 0
    assert counts["processed"] + counts["host_poison"] == counts["sent"]
    assert not ledger.set_aside
    assert processed == ids_of(sent, "ok", "flaky")
    assert all(count == 1 for count in ledger.processed.values())
    # The copies in orders-poison are exactly the failing orders, once each.
    failing = ids_of(sent, "poison", *INVALID_KINDS)
    assert sorted(host_poison) == sorted(sent[i][1] for i in failing)
    assert not processed & failing
    # max_attempts without a hook never acknowledges: the host's maxDequeueCount decides.
    seen_by_host = dequeue_counts(deliveries)
    for message_id in failing:
        assert seen_by_host[message_id] == [1, 2, 3, 4, 5]
    for message_id in ids_of(sent, "poison"):
        assert ledger.attempts[message_id] == [1, 2, 3, 4, 5]
    poisoned = {d.message_id for d in deliveries if d.outcome == "poisoned"}
    assert poisoned == failing
