"""The Event Grid trigger: both schemas become CloudEvents; blob notifications become StorageEvents."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests.support import as_json, call, decode, functions, load, load_native

import polyserve_azure
from polyserve import (
    App,
    CloudEvent,
    MalformedEventError,
    StorageAction,
    StorageEvent,
    UnsupportedEventError,
)

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


def _grid(event: dict[str, Any]) -> Any:
    return decode("eventGridTrigger", as_json(event))


def _sample(name: str, **changes: Any) -> Any:
    event = load(name)["data"]["value"]
    event.update(changes)
    return _grid(event)


def test_an_event_grid_schema_event(fns: dict[str, Function], recorder: Recorder) -> None:
    native = load_native("eventgrid-custom.json")
    assert isinstance(native, func.EventGridEvent)
    assert call(fns["eventgrid"], native) is None
    event = recorder.last
    assert event == CloudEvent(
        id="0f6a2d1e-8c3b-4f59-9e27-5b6a7c8d9e0f",
        source="/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/shop"
        "/providers/Microsoft.EventGrid/topics/orders",
        type="Shop.Order.Placed",
        subject="orders/1017",
        time=dt.datetime(2024, 6, 3, 9, 41, 7, 123456, tzinfo=UTC),
        data={"order_id": 1017, "total": 42.0},
        extensions={"dataversion": "1.0"},
    )
    assert event.raw is native


def test_a_cloudevents_schema_event(fns: dict[str, Function], recorder: Recorder) -> None:
    native = load_native("eventgrid-cloudevent.json")
    assert isinstance(native, func.CloudEvent)
    call(fns["eventgrid"], native)
    event = recorder.last
    assert (event.type, event.source, event.specversion) == (
        "shop.order.shipped",
        "/shop/orders",
        "1.0",
    )
    assert event.datacontenttype == "application/json"
    assert event.extensions == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    }
    assert event.json() == {"order_id": 1017, "carrier": "DHL"}


def test_binary_cloudevent_data_is_decoded() -> None:
    app = App("binary")
    seen: list[CloudEvent] = []

    @app.cloudevent("bin.data")
    def on_event(event: CloudEvent) -> None:
        seen.append(event)

    fn = functions(polyserve_azure.function_app(app))["eventgrid"]
    event = {"specversion": "1.0", "id": "1", "source": "/s", "type": "bin.data"}
    call(fn, _grid({**event, "data_base64": "AAEC/w=="}))
    assert seen[0].data == b"\x00\x01\x02\xff"
    assert "data_base64" not in seen[0].extensions
    with pytest.raises(MalformedEventError) as caught:
        call(fn, _grid({**event, "data_base64": "not base64!"}))
    assert caught.value.code == "invalid_base64"


def test_a_type_handler_wins_over_the_catch_all() -> None:
    app = App("types")
    seen: list[tuple[str, str]] = []
    app.cloudevent("Shop.Order.Placed")(lambda event: seen.append(("placed", event.id)))
    app.cloudevent("*")(lambda event: seen.append(("other", event.id)))
    fn = functions(polyserve_azure.function_app(app))["eventgrid"]
    call(fn, load_native("eventgrid-custom.json"))
    call(fn, load_native("eventgrid-cloudevent.json"))
    assert seen == [
        ("placed", "0f6a2d1e-8c3b-4f59-9e27-5b6a7c8d9e0f"),
        ("other", "b85d631a-101e-005a-02f2-cee7aa06f148"),
    ]


def test_an_event_nobody_handles_fails_so_event_grid_retries() -> None:
    app = App("one-type")
    app.cloudevent("only.this")(lambda event: None)
    fn = functions(polyserve_azure.function_app(app))["eventgrid"]
    with pytest.raises(UnsupportedEventError):
        call(fn, load_native("eventgrid-custom.json"))


def _grid_event(**changes: Any) -> func.EventGridEvent:
    fields: dict[str, Any] = {
        "id": "e-1",
        "topic": "/topics/orders",
        "subject": "orders/1",
        "event_type": "Shop.Order.Placed",
        "event_time": dt.datetime(2024, 6, 3, tzinfo=UTC),
        "data": {},
        "data_version": "1.0",
    }
    return func.EventGridEvent(**{**fields, **changes})


def _cloud_event(**changes: Any) -> func.CloudEvent:
    fields: dict[str, Any] = {"id": "c-1", "source": "/s", "type": "t", "specversion": "1.0"}
    return func.CloudEvent(**{**fields, "data": None, **changes})


@pytest.mark.parametrize(
    "native",
    [
        _grid_event(id=None),
        _grid_event(event_type=""),
        _grid_event(topic=None),
        _grid_event(event_time="noon"),
        _grid_event(subject=12),
        _cloud_event(source=None),
        _cloud_event(time=5),
        _cloud_event(specversion=1.0),
        _sample("eventgrid-blob-deleted.json", data="not an object"),
        _sample("eventgrid-blob-deleted.json", subject="/elsewhere", data={"api": "DeleteBlob"}),
        _sample("eventgrid-blob-created-cloudevent.json", data={"contentLength": "big"}),
    ],
    ids=[
        "no-id",
        "no-type",
        "no-topic",
        "text-time",
        "int-subject",
        "no-source",
        "int-time",
        "float-specversion",
        "text-blob-data",
        "no-blob-name",
        "text-length",
    ],
)
def test_malformed_events_are_typed_errors(fns: dict[str, Function], native: Any) -> None:
    with pytest.raises(MalformedEventError):
        call(fns["eventgrid"], native)


def test_something_that_is_not_an_event_is_unsupported(fns: dict[str, Function]) -> None:
    with pytest.raises(UnsupportedEventError):
        call(fns["eventgrid"], func.QueueMessage(id="m", body=b"{}"))


def test_a_blob_deletion_reaches_the_storage_handler(
    fns: dict[str, Function], recorder: Recorder
) -> None:
    native = load_native("eventgrid-blob-deleted.json")
    call(fns["eventgrid"], native)
    assert recorder.last == StorageEvent(
        id="831e1650-001e-001b-66ab-eeb76e069631",
        action=StorageAction.DELETED,
        bucket="uploads",
        key="photos/2024/cat picture.jpg",
        content_type="image/jpeg",
        occurred_at=dt.datetime(2024, 6, 3, 12, 30, tzinfo=UTC),
    )
    assert recorder.last.raw is native


def test_the_blob_url_names_the_blob_when_the_subject_does_not(
    fns: dict[str, Function], recorder: Recorder
) -> None:
    call(fns["eventgrid"], _sample("eventgrid-blob-deleted.json", subject=None))
    assert (recorder.last.bucket, recorder.last.key) == ("uploads", "photos/2024/cat picture.jpg")


def _storage_app(**options: Any) -> tuple[Function, list[object]]:
    app = App("storage")
    seen: list[object] = []

    @app.storage("archive", **options)
    def on_blob(event: StorageEvent) -> None:
        seen.append(event)

    @app.cloudevent("*")
    def on_event(event: CloudEvent) -> None:
        seen.append(event)

    return functions(polyserve_azure.function_app(app))["eventgrid"], seen


def test_a_creation_the_blob_trigger_delivers_is_not_handled_twice() -> None:
    fn, seen = _storage_app()
    assert call(fn, load_native("eventgrid-blob-created-cloudevent.json")) is None
    assert seen == []


def test_creations_come_through_event_grid_when_the_blob_trigger_is_off() -> None:
    fn, seen = _storage_app(blob_trigger=False)
    call(fn, load_native("eventgrid-blob-created-cloudevent.json"))
    (event,) = seen
    assert isinstance(event, StorageEvent)
    assert (event.action, event.bucket, event.key) == (
        StorageAction.CREATED,
        "archive",
        "reports/2024-06.csv",
    )
    assert (event.size, event.etag, event.content_type) == (52431, "0x8DC83B1F5E3A2B1", "text/csv")


def test_blob_events_of_other_containers_are_cloudevents() -> None:
    fn, seen = _storage_app(actions=("deleted",))
    call(fn, load_native("eventgrid-blob-deleted.json"))
    (event,) = seen
    assert isinstance(event, CloudEvent)
    assert event.type == "Microsoft.Storage.BlobDeleted"


def test_names_map_the_container_to_the_registration() -> None:
    app = App("mapped")
    seen: list[StorageEvent] = []

    @app.storage("files", actions=("deleted",))
    def on_blob(event: StorageEvent) -> None:
        seen.append(event)

    fn = functions(polyserve_azure.function_app(app, names={"uploads": "files"}))["eventgrid"]
    call(fn, load_native("eventgrid-blob-deleted.json"))
    assert (seen[0].bucket, seen[0].key) == ("uploads", "photos/2024/cat picture.jpg")
