"""Blob trigger: one ``azure.functions.InputStream`` -> ``StorageEvent`` (``CREATED``).

The blob trigger fires when a blob is created or overwritten; it never reports a
deletion (those come from Event Grid, see ``_eventgrid``). The host has already
read the blob when the function runs: the content is in ``event.raw.read()``.
A failure raises; the host retries the blob up to 5 times, then writes it to the
``webjobs-blobtrigger-poison`` queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from polyserve.adapter import translating
from polyserve.errors import MalformedEventError
from polyserve.events import StorageAction, StorageEvent
from polyserve_azure import _wire

if TYPE_CHECKING:
    from polyserve.context import Context
    from polyserve_azure._types import NativeBlob

__all__ = ["matches", "read"]


def matches(raw: object) -> bool:
    """True for an object shaped like ``azure.functions.InputStream``."""
    return hasattr(raw, "name") and hasattr(raw, "blob_properties") and hasattr(raw, "read")


def read(blob: NativeBlob, context: Context, *, container: str) -> StorageEvent:
    """The event for a blob written to ``container`` (its name as in Azure).

    ``key`` is the blob name without the container; ``id`` is ``container/key``
    plus ``@etag`` when the host reports one, so every retry of one write has the
    same id.

    Raises:
        MalformedEventError: the blob name is missing or outside ``container``, or a
            property has the wrong type.
    """
    with translating("blob trigger input"):
        key = _key(_wire.text(blob.name, "blob name"), container)
        props = blob.blob_properties
        if props is None:
            props = {}
        if not isinstance(props, Mapping):
            raise MalformedEventError("blob properties must be a mapping")
        etag = _etag(props.get("ETag") or props.get("Etag"))
        return StorageEvent(
            id=f"{container}/{key}" + (f"@{etag}" if etag else ""),
            action=StorageAction.CREATED,
            bucket=container,
            key=key,
            size=_size(blob.length, props),
            etag=etag,
            version=_wire.optional_text(props.get("VersionId"), "blob VersionId"),
            content_type=_wire.optional_text(props.get("ContentType"), "blob ContentType"),
            occurred_at=_wire.utc(props.get("LastModified"), "blob LastModified"),
            raw=blob,
        )


def _key(name: str, container: str) -> str:
    # The worker names the blob "<container>/<path>", as the trigger's path pattern does.
    head, sep, key = name.partition("/")
    if not sep or head != container or not key:
        raise MalformedEventError(f"blob name {name!r} is not inside container {container!r}")
    return key


def _etag(value: object) -> str | None:
    etag = _wire.optional_text(value, "blob ETag")
    return etag.strip('"') if etag else None


def _size(length: object, props: Mapping[str, Any]) -> int | None:
    for value in (length, props.get("ContentLength"), props.get("Length")):
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise MalformedEventError(f"blob length must be an integer, got {value!r}")
    return None
