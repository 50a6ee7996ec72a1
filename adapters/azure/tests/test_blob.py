"""The blob trigger: a created or overwritten blob becomes a ``StorageEvent`` (``CREATED``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from adapters.azure.tests.support import as_json, call, decode, functions, load_native, text
from azure.functions.blob import InputStream

import polyserve_azure
from polyserve import App, MalformedEventError, StorageAction, StorageEvent

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from polyserve_testkit.recorder import Recorder

UTC = dt.timezone.utc


def test_a_created_blob(fns: dict[str, Function], recorder: Recorder) -> None:
    native = load_native("blob-created.json")
    assert call(fns["blob_uploads"], native) is None
    assert recorder.last == StorageEvent(
        id="uploads/imports/pets.csv@0x8DC83B2A7B9C3D4",
        action=StorageAction.CREATED,
        bucket="uploads",
        key="imports/pets.csv",
        size=14,
        etag="0x8DC83B2A7B9C3D4",
        content_type="text/csv",
        occurred_at=dt.datetime(2024, 6, 3, 12, 45, 10, tzinfo=UTC),
    )
    assert recorder.last.raw.read() == b"id,name\n1,rex\n"


def test_older_property_names_and_a_version() -> None:
    native = decode(
        "blobTrigger",
        {"type": "string", "value": "hello"},
        {
            "BlobTrigger": text("uploads/a.txt"),
            "Uri": text("https://acct.blob.core.windows.net/uploads/a.txt"),
            "Properties": as_json({"Length": "5", "VersionId": "2024-06-03T12:00:00.0000000Z"}),
        },
    )
    app = App("blobs")
    seen: list[StorageEvent] = []

    @app.storage("uploads")
    def on_blob(event: StorageEvent) -> None:
        seen.append(event)

    call(functions(polyserve_azure.function_app(app))["blob_uploads"], native)
    event = seen[0]
    assert (event.size, event.version, event.etag, event.id) == (
        5,
        "2024-06-03T12:00:00.0000000Z",
        None,
        "uploads/a.txt",
    )


def test_the_bucket_is_the_container_and_names_pick_the_registration() -> None:
    app = App("mapped")
    seen: list[StorageEvent] = []

    @app.storage("files")
    def on_blob(event: StorageEvent) -> None:
        seen.append(event)

    fns = functions(polyserve_azure.function_app(app, names={"uploads": "files"}))
    call(fns["blob_uploads"], load_native("blob-created.json"))
    assert (seen[0].bucket, seen[0].key) == ("uploads", "imports/pets.csv")


@pytest.mark.parametrize(
    "native",
    [
        # Mistyped on purpose (hence the type ignores): each must fail with a typed error.
        InputStream(data=b"x", name=None),
        InputStream(data=b"x", name="other/a.txt"),
        InputStream(data=b"x", name="uploads/"),
        InputStream(data=b"x", name="uploads/a.txt", blob_properties=["ETag"]),  # type: ignore[arg-type]
        InputStream(data=b"x", name="uploads/a.txt", length="five"),  # type: ignore[arg-type]
        InputStream(data=b"x", name="uploads/a.txt", blob_properties={"LastModified": "never"}),
        InputStream(data=b"x", name="uploads/a.txt", blob_properties={"ContentType": 3}),
    ],
    ids=[
        "no-name",
        "other-container",
        "no-key",
        "list-props",
        "text-length",
        "bad-time",
        "int-type",
    ],
)
def test_a_malformed_blob_fails_with_a_typed_error(fns: dict[str, Function], native: Any) -> None:
    with pytest.raises(MalformedEventError):
        call(fns["blob_uploads"], native)
