"""Outbound queues, topics and buckets: encoding, names, limits, batches and retries, memory backend."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pydantic
import pytest

from polyserve import App, CloudEvent
from polyserve.errors import ConfigurationError, PolyserveError
from polyserve.outbound import (
    BatchPublishError,
    Bucket,
    MemoryBackend,
    MessageTooLargeError,
    ObjectNotFoundError,
    PublishError,
    Queue,
    Topic,
    TransientPublishError,
    configure,
)
from polyserve.outbound.cloudevents import (
    STRUCTURED_TYPE,
    cloudevent_response,
    to_binary,
    to_dict,
    to_structured,
)
from polyserve.tracing import TraceContext

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from polyserve.outbound import Message


@pytest.fixture(autouse=True)
def _reset(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("POLYSERVE_OUTBOUND", raising=False)
    configure(None, names={})
    yield
    configure(None, names={})


@pytest.fixture
def memory() -> MemoryBackend:
    backend = MemoryBackend()
    configure(backend)
    return backend


@dataclasses.dataclass
class Order:
    id: int
    when: dt.date


class Model(pydantic.BaseModel):
    id: int
    name: str


def test_payloads_are_encoded_as_responses_are(memory: MemoryBackend) -> None:
    queue = App("shop").queue_out("orders")
    queue.send(b"\x00raw")
    queue.send("text")
    queue.send({"a": 1})
    queue.send(Order(1, dt.date(2026, 1, 2)))
    queue.send(Model(id=2, name="x"))
    sent = [(m.body, m.content_type) for m in memory.messages("orders")]
    assert sent == [
        (b"\x00raw", "application/octet-stream"),
        (b"text", "text/plain; charset=utf-8"),
        (b'{"a":1}', "application/json"),
        (b'{"id":1,"when":"2026-01-02"}', "application/json"),
        (b'{"id":2,"name":"x"}', "application/json"),
    ]


def test_attributes_key_and_trace_travel_with_the_message(memory: MemoryBackend) -> None:
    trace = TraceContext(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True, tracestate="k=v"
    )
    topic = App("shop").topic_out("events")
    message_id = topic.publish({"x": 1}, attributes={"kind": "created"}, key="c-1", trace=trace)
    (message,) = memory.messages("events", kind="topic")
    assert message_id == "1"
    assert message.key == "c-1"
    assert message.headers() == {
        "kind": "created",
        "content-type": "application/json",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "k=v",
    }
    assert "x" not in repr(message)  # bodies stay out of logs


def test_no_backend_is_a_configuration_error_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="POLYSERVE_OUTBOUND"):
        Queue("orders").send("x")


def test_unknown_backend_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "nowhere")
    with pytest.raises(ConfigurationError, match="'nowhere' names no backend"):
        Queue("orders").send("x")


def test_memory_backend_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYSERVE_OUTBOUND", "memory")
    assert Queue("orders").send("x") == "1"


class Recording:
    """A backend that needs a target, fails as told and records every call."""

    needs_target = True

    def __init__(self, plan: dict[bytes, list[Exception]] | None = None, batch: int = 10) -> None:
        self.plan = plan or {}
        self.batch = batch
        self.calls: list[tuple[str, list[bytes]]] = []

    def service(self, kind: str, target: str) -> str:
        return "Recording"

    def max_bytes(self, kind: str, target: str) -> int:
        return 100

    def max_batch(self, kind: str, target: str) -> int:
        return self.batch

    def send(self, kind: str, target: str, messages: Sequence[Message]) -> list[str | Exception]:
        self.calls.append((target, [m.body for m in messages]))
        out: list[str | Exception] = []
        for m in messages:
            errors = self.plan.get(m.body)
            out.append(errors.pop(0) if errors else "id-" + m.body.decode())
        return out


def test_target_from_environment_mapping_or_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Recording()
    configure(backend)
    with pytest.raises(ConfigurationError, match="POLYSERVE_QUEUE_ORDER_EVENTS"):
        Queue("order-events").send("x")
    monkeypatch.setenv("POLYSERVE_QUEUE_ORDER_EVENTS", "https://sqs/q1")
    Queue("order-events").send("a")
    configure(backend, names={"queue:order-events": "https://sqs/q2", "jobs": "q3"})
    Queue("order-events").send("b")
    Queue("jobs").send("c")
    Queue("order-events", target="q4").send("d")
    assert [c[0] for c in backend.calls] == ["https://sqs/q1", "https://sqs/q2", "q3", "q4"]


def test_too_large_is_refused_before_sending() -> None:
    backend = Recording()
    queue = Queue("orders", target="q", backend=backend)
    with pytest.raises(MessageTooLargeError) as caught:
        queue.send_batch(["ok", "x" * 101])
    assert backend.calls == []
    assert (caught.value.limit, caught.value.size) == (100, 101)
    assert "limit of 100 bytes" in str(caught.value)
    assert isinstance(caught.value, PublishError)
    assert isinstance(caught.value, PolyserveError)


def test_batches_are_split_and_transient_failures_retried_with_backoff() -> None:
    plan: dict[bytes, list[Exception]] = {
        b"2": [TransientPublishError("throttled")],
        b"4": [TransientPublishError("busy"), TransientPublishError("busy")],
    }
    backend = Recording(plan, batch=3)
    slept: list[float] = []
    queue = Queue("orders", target="q", backend=backend, sleep=slept.append)
    ids = queue.send_batch([str(i) for i in range(7)])
    assert ids == [f"id-{i}" for i in range(7)]
    assert [c[1] for c in backend.calls] == [
        [b"0", b"1", b"2"],
        [b"3", b"4", b"5"],
        [b"6"],
        [b"2", b"4"],
        [b"4"],
    ]
    assert slept == [0.05, 0.2]


def test_partial_failure_reports_exactly_the_failed_messages() -> None:
    refused = PublishError("invalid attribute")
    plan: dict[bytes, list[Exception]] = {
        b"1": [refused],
        b"3": [TransientPublishError("throttled")] * 4,
    }
    queue = Queue("orders", target="q", backend=Recording(plan), sleep=lambda _: None)
    with pytest.raises(BatchPublishError) as caught:
        queue.send_batch([str(i) for i in range(5)])
    failures = caught.value.failures
    assert [(f.index, f.message.body) for f in failures] == [(1, b"1"), (3, b"3")]
    assert failures[0].error is refused
    assert isinstance(failures[1].error, TransientPublishError)
    assert caught.value.sent == 3


def test_single_send_raises_the_error_it_met() -> None:
    plan: dict[bytes, list[Exception]] = {b"x": [PublishError("no such queue")]}
    with pytest.raises(PublishError, match="no such queue"):
        Queue("orders", target="q", backend=Recording(plan)).send("x")


def test_bucket_round_trip(memory: MemoryBackend) -> None:
    thumbs = App("shop").bucket("thumbs")
    thumbs.put("t/a.jpg", b"jpeg", content_type="image/jpeg", metadata={"w": "10"})
    thumbs.put("t/b.json", {"k": 1})
    thumbs.put("other", "text")
    assert thumbs.get("t/b.json") == b'{"k":1}'
    assert memory.objects[("thumbs", "t/a.jpg")].content_type == "image/jpeg"
    assert list(thumbs.list("t/")) == ["t/a.jpg", "t/b.json"]
    assert list(thumbs.open("other", chunk_size=3)) == [b"tex", b"t"]
    assert thumbs.url("t/a.jpg", expires=60).startswith("memory://thumbs/t/a.jpg")
    thumbs.delete("t/a.jpg")
    thumbs.delete("t/a.jpg")
    with pytest.raises(ObjectNotFoundError):
        thumbs.get("t/a.jpg")


def test_bucket_size_limit() -> None:
    backend = MemoryBackend(max_object_bytes=4)
    with pytest.raises(MessageTooLargeError, match="limit of 4 bytes"):
        Bucket("b", backend=backend).put("k", b"12345")
    assert backend.objects == {}


def test_listeners_see_each_message_after_it_is_kept(memory: MemoryBackend) -> None:
    seen: list[tuple[str, str, bytes, int]] = []
    stop = memory.listen(
        lambda kind, name, m: seen.append((kind, name, m.body, len(memory.messages(name, kind))))
    )
    Topic("t").publish("a")
    stop()
    Topic("t").publish("b")
    assert seen == [("topic", "t", b"a", 1)]


def _event(**changes: object) -> CloudEvent:
    fields: dict[str, object] = {
        "id": "e1",
        "source": "/shop",
        "type": "order.created",
        "time": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "subject": "o-1",
        "datacontenttype": "application/json",
        "data": {"id": 1},
        "extensions": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    }
    fields.update(changes)
    return CloudEvent(**fields)  # type: ignore[arg-type]


def test_structured_cloudevent() -> None:
    doc = json.loads(to_structured(_event()))
    assert doc == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/shop",
        "type": "order.created",
        "subject": "o-1",
        "datacontenttype": "application/json",
        "time": "2026-01-02T03:04:05Z",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": {"id": 1},
    }
    binary = to_dict(_event(data=b"\xff\x00", datacontenttype="application/octet-stream"))
    assert base64.b64decode(binary["data_base64"]) == b"\xff\x00"
    assert "data" not in binary


def test_binary_cloudevent() -> None:
    headers, body = to_binary(_event(extensions={"partitionkey": "p", "count": 3}))
    assert body == b'{"id":1}'
    assert headers["content-type"] == "application/json"
    assert headers["ce-id"] == "e1"
    assert headers["ce-time"] == "2026-01-02T03:04:05Z"
    assert headers["ce-partitionkey"] == "p"
    assert headers["ce-count"] == "3"
    headers, body = to_binary(_event(data="plain", datacontenttype="text/plain"))
    assert body == b"plain"


@pytest.mark.parametrize("name", ["Bad", "a-b", "data", "id", ""])
def test_bad_extension_names_are_refused(name: str) -> None:
    with pytest.raises(PublishError, match="extension"):
        to_structured(_event(extensions={name: "x"}))


def test_missing_required_attribute() -> None:
    with pytest.raises(PublishError, match="non-empty id"):
        to_structured(_event(id=""))


def test_cloudevent_response() -> None:
    response = cloudevent_response(_event(), status=201)
    assert response.status == 201
    assert response.headers["content-type"] == STRUCTURED_TYPE
    assert json.loads(response.body)["id"] == "e1"
    response = cloudevent_response(_event(), binary=True)
    assert response.headers["ce-type"] == "order.created"
    assert response.headers["content-type"] == "application/json"
    assert response.body == b'{"id":1}'


def test_importing_polyserve_does_not_load_outbound() -> None:
    code = "import sys, polyserve; app = polyserve.App('a'); print('polyserve.outbound' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
