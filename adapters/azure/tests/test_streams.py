"""Event Hubs and Cosmos DB triggers: batches handled in order; any failure fails the invocation."""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests.support import (
    InvocationContext,
    as_json,
    call,
    datum,
    decode,
    functions,
    load_native,
)

import polyserve_azure
from polyserve import (
    App,
    ChangeType,
    MalformedEventError,
    Message,
    StreamRecord,
    UnsupportedEventError,
)
from polyserve_azure import BatchFailedError, _eventhub

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


def _hub_batch(*bodies: bytes, first_sequence: int = 100) -> Any:
    system = [
        {
            "SequenceNumber": first_sequence + i,
            "Offset": str(4096 * i),
            "PartitionKey": f"device-{i % 2}",
            "EnqueuedTimeUtc": f"2024-06-03T10:00:0{i}Z",
        }
        for i in range(len(bodies))
    ]
    return decode(
        "eventHubTrigger",
        {"type": "collection_bytes", "value": [base64.b64encode(b).decode() for b in bodies]},
        {
            "SystemPropertiesArray": as_json(system),
            "PropertiesArray": as_json([{"n": i} for i in range(len(bodies))]),
        },
    )


def test_an_event_hubs_batch(fns: dict[str, Function], recorder: Recorder) -> None:
    native = load_native("eventhub-batch.json")
    assert call(fns["eventhub_telemetry"], native) is None
    first, second = recorder.seen
    assert first == Message(
        id="1207",
        body=b'{"device": "t-1", "temp": 21.5}',
        attributes={"schema": "v2"},
        attempt=1,
        enqueued_at=dt.datetime(2024, 6, 3, 9, 41, 7, 123000, tzinfo=UTC),
        source="telemetry",
        group_key="t-1",
    )
    assert (second.id, second.body, second.group_key) == ("1208", b"\x00\x01binary\xff", None)
    assert first.raw is native[0]


def test_the_attempt_is_the_run_of_the_retry_policy(
    fns: dict[str, Function], recorder: Recorder
) -> None:
    user = fns["eventhub_telemetry"].get_user_function()
    user(load_native("eventhub-batch.json"), InvocationContext("inv-r", retry_count=2))
    assert [m.attempt for m in recorder.seen] == [3, 3]
    user(load_native("eventhub-batch.json"), InvocationContext("inv-r", retry_count=0))
    assert recorder.last.attempt == 1


class _Flaky:
    """Handles a stream and fails on the records whose body is in ``failing``."""

    def __init__(self, *failing: bytes) -> None:
        self.failing = failing
        self.handled: list[str] = []
        self.app = App("flaky")
        self.app.stream("telemetry")(self.on_event)

    def on_event(self, msg: Message) -> None:
        if msg.body in self.failing:
            raise ValueError(f"cannot handle {msg.id}")
        self.handled.append(msg.id)


def test_a_failed_record_stops_the_batch_and_fails_the_invocation() -> None:
    flaky = _Flaky(b"b")
    fn = functions(polyserve_azure.function_app(flaky.app))["eventhub_telemetry"]
    with pytest.raises(BatchFailedError) as caught:
        call(fn, _hub_batch(b"a", b"b", b"c"))
    assert flaky.handled == ["100"]
    result = caught.value.result
    assert result.succeeded == ("100",)
    assert [f.item_id for f in result.failed] == ["101", "102"]
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.code == "batch_failed"


def test_a_record_that_cannot_be_decoded_fails_from_there_on() -> None:
    flaky = _Flaky()
    fn = functions(polyserve_azure.function_app(flaky.app))["eventhub_telemetry"]
    events = [
        func.EventHubEvent(body=b"a", sequence_number=1),
        func.EventHubEvent(body=b"b"),
        func.EventHubEvent(body=b"c", sequence_number=3),
    ]
    with pytest.raises(BatchFailedError) as caught:
        call(fn, events)
    assert flaky.handled == ["1"]
    assert [f.item_id for f in caught.value.result.failed] == ["#1", "3"]
    assert isinstance(caught.value.__cause__, MalformedEventError)


def test_an_empty_batch_succeeds_and_a_single_event_is_unsupported() -> None:
    flaky = _Flaky()
    fn = functions(polyserve_azure.function_app(flaky.app))["eventhub_telemetry"]
    assert call(fn, []) is None
    with pytest.raises(UnsupportedEventError):
        call(fn, func.EventHubEvent(body=b"a", sequence_number=1))


def test_a_single_event_reads_its_properties_from_its_own_metadata() -> None:
    native = decode(
        "eventHubTrigger",
        {"type": "bytes", "value": "hello"},
        {
            "SystemProperties": as_json({"SequenceNumber": 9}),
            "SequenceNumber": {"type": "int", "value": 9},
            "Properties": as_json({"kind": "greeting"}),
        },
    )
    message = _eventhub.read(native, 0, source="hub")
    assert (message.id, message.body, message.attributes) == ("9", b"hello", {"kind": "greeting"})


@pytest.mark.parametrize(
    "event",
    [
        # Mistyped on purpose (hence the type ignores): each must fail with a typed error.
        func.EventHubEvent(body=b"x", sequence_number="9"),  # type: ignore[arg-type]
        func.EventHubEvent(body=b"x", sequence_number=9, partition_key=3),  # type: ignore[arg-type]
        func.EventHubEvent(body=b"x", sequence_number=9, enqueued_time="soon"),  # type: ignore[arg-type]
        func.EventHubEvent(body=7, sequence_number=9),  # type: ignore[arg-type]
        func.EventHubEvent(
            body=b"x",
            sequence_number=9,
            trigger_metadata={"Properties": datum(as_json(["not", "a", "map"]))},
        ),
    ],
    ids=["text-sequence", "int-partition-key", "bad-time", "int-body", "list-properties"],
)
def test_malformed_events_are_typed_errors(event: func.EventHubEvent) -> None:
    with pytest.raises(MalformedEventError):
        _eventhub.read(event, 0, source="hub")


def test_a_cosmos_change_feed_batch(recorder: Recorder, fns: dict[str, Function]) -> None:
    native = load_native("cosmos-changes.json")
    assert isinstance(native, func.DocumentList)
    call(fns["cosmos_items"], native)
    first, second = recorder.seen
    assert isinstance(first, StreamRecord)
    assert first.change is ChangeType.UPSERT
    assert (first.source, first.keys, first.old) == ("items", {"id": "sku-200"}, None)
    assert first.new is not None
    assert first.new["name"] == "Keyboard"
    assert first.new["_lsn"] == 88
    assert (first.sequence, first.id) == ("88", "sku-200@0d00d1a4-0000-0d00-0000-665d8e930000")
    assert first.occurred_at == dt.datetime(2024, 6, 3, 9, 36, 19, tzinfo=UTC)
    assert second.keys == {"id": "sku-201"}
    assert first.raw is native[0]


@pytest.mark.parametrize(
    ("partition_key", "keys"),
    [
        ("/tenant", {"id": "a", "tenant": "acme"}),
        ("tenant", {"id": "a", "tenant": "acme"}),
        ("/address/zip", {"id": "a", "address/zip": "1010"}),
        (["/tenant", "/address/zip"], {"id": "a", "tenant": "acme", "address/zip": "1010"}),
        ("/missing", {"id": "a"}),
    ],
)
def test_cosmos_keys_follow_the_partition_key(partition_key: Any, keys: dict[str, Any]) -> None:
    app = App("cosmos")
    seen: list[StreamRecord] = []

    @app.stream("items", service="cosmosdb", database="shop", partition_key=partition_key)
    def on_change(record: StreamRecord) -> None:
        seen.append(record)

    fn = functions(polyserve_azure.function_app(app))["cosmos_items"]
    document = func.Document.from_dict({"id": "a", "tenant": "acme", "address": {"zip": "1010"}})
    call(fn, func.DocumentList([document]))
    assert seen[0].keys == keys


def test_a_document_without_an_id_fails_alone_and_stops_the_batch() -> None:
    app = App("cosmos")
    seen: list[str] = []

    @app.stream("items", service="cosmosdb", database="shop")
    def on_change(record: StreamRecord) -> None:
        seen.append(record.id)

    fn = functions(polyserve_azure.function_app(app))["cosmos_items"]
    docs = func.DocumentList(
        [func.Document.from_dict({"id": "a"}), None, func.Document.from_dict({"id": "c"})]
    )
    with pytest.raises(BatchFailedError) as caught:
        call(fn, docs)
    assert seen == ["a"]
    assert [f.item_id for f in caught.value.result.failed] == ["#1", "c"]
    with pytest.raises(BatchFailedError):
        call(fn, func.DocumentList([func.Document.from_dict({"name": "no id"})]))
    with pytest.raises(BatchFailedError):
        call(fn, func.DocumentList([func.Document.from_dict({"id": "t", "_ts": "today"})]))
    with pytest.raises(UnsupportedEventError):
        call(fn, "not a batch")
