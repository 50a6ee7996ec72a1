"""Event Grid trigger: ``EventGridEvent`` or ``CloudEvent`` (either schema) -> ``CloudEvent``,
and blob created/deleted notifications -> ``StorageEvent``.

The worker decodes a delivery in the CloudEvents 1.0 schema (it has
``specversion``) as ``azure.functions.CloudEvent`` and one in the Event Grid
schema as ``azure.functions.EventGridEvent``; both become the same ``CloudEvent``.
For the Event Grid schema, ``source`` is the topic, and ``dataVersion`` is kept as
the ``dataversion`` extension. A failure raises: Event Grid retries with backoff
(30 attempts within 24 hours by default), then drops the event or dead-letters it
where the subscription names a dead-letter container.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from polyserve.adapter import translating
from polyserve.errors import MalformedEventError
from polyserve.events import CloudEvent, StorageAction, StorageEvent
from polyserve_azure import _wire

if TYPE_CHECKING:
    from typing_extensions import TypeIs

    from polyserve.context import Context
    from polyserve_azure._types import NativeCloudEvent, NativeEventGridEvent

__all__ = ["matches", "read", "storage_change"]

_BLOB_ACTIONS = {
    "Microsoft.Storage.BlobCreated": StorageAction.CREATED,
    "Microsoft.Storage.BlobDeleted": StorageAction.DELETED,
}
_BLOB_SUBJECT = re.compile(r"^/blobServices/default/containers/([^/]+)/blobs/(.+)$")


def matches(raw: object) -> bool:
    """True for an Event Grid schema event or a CloudEvents schema event."""
    return hasattr(raw, "event_type") or hasattr(raw, "specversion")


def read(raw: NativeEventGridEvent | NativeCloudEvent, context: Context) -> CloudEvent:
    """The delivery as a ``CloudEvent``.

    Raises:
        MalformedEventError: ``id``, ``source`` (topic) or ``type`` is missing, a field
            is mistyped, or ``data_base64`` is not base64 (code ``invalid_base64``).
    """
    with translating("Event Grid event"):
        if _is_cloudevent(raw):
            return _from_cloudevent(raw)
        return _from_event_grid(raw)


def _is_cloudevent(
    raw: NativeEventGridEvent | NativeCloudEvent,
) -> TypeIs[NativeCloudEvent]:
    return hasattr(raw, "specversion")


def _from_event_grid(raw: NativeEventGridEvent) -> CloudEvent:
    version = _wire.optional_text(raw.data_version, "Event Grid dataVersion")
    return CloudEvent(
        id=_wire.text(raw.id, "Event Grid event id"),
        source=_wire.text(raw.topic, "Event Grid event topic"),
        type=_wire.text(raw.event_type, "Event Grid eventType"),
        subject=_wire.optional_text(raw.subject, "Event Grid event subject"),
        time=_wire.utc(raw.event_time, "Event Grid eventTime"),
        data=raw.get_json(),
        extensions={"dataversion": version} if version else {},
        raw=raw,
    )


def _from_cloudevent(raw: NativeCloudEvent) -> CloudEvent:
    extensions = raw.extension_attrs
    if not isinstance(extensions, Mapping):
        raise MalformedEventError("CloudEvent extension attributes must be a mapping")
    extensions = dict(extensions)
    data = raw.get_json()
    encoded = extensions.pop("data_base64", None)
    if encoded is not None and data is None:
        data = _base64(encoded)
    return CloudEvent(
        id=_wire.text(raw.id, "CloudEvent id"),
        source=_wire.text(raw.source, "CloudEvent source"),
        type=_wire.text(raw.type, "CloudEvent type"),
        specversion=_wire.text(raw.specversion, "CloudEvent specversion"),
        subject=_wire.optional_text(raw.subject, "CloudEvent subject"),
        time=_wire.utc(raw.time, "CloudEvent time"),
        datacontenttype=_wire.optional_text(raw.datacontenttype, "CloudEvent datacontenttype"),
        dataschema=_wire.optional_text(raw.dataschema, "CloudEvent dataschema"),
        data=data,
        extensions=extensions,
        raw=raw,
    )


def storage_change(event: CloudEvent) -> StorageEvent | None:
    """The blob event inside a ``Microsoft.Storage.BlobCreated``/``BlobDeleted`` notification.

    ``None`` for any other type. ``bucket`` is the container as named in Azure, ``key``
    the blob name from the subject (or, without one, the URL-decoded path of
    ``data.url``); ``size`` is ``contentLength`` (created blobs only).

    Raises:
        MalformedEventError: the subject and URL name no blob, or ``data`` is not an object.
    """
    action = _BLOB_ACTIONS.get(event.type)
    if action is None:
        return None
    data = event.data
    if not isinstance(data, Mapping):
        raise MalformedEventError(f"{event.type} data must be an object")
    container, key = _blob_path(event.subject, data)
    etag = _wire.optional_text(data.get("eTag"), "blob event eTag")
    return StorageEvent(
        id=event.id,
        action=action,
        bucket=container,
        key=key,
        size=_length(data.get("contentLength")) if action is StorageAction.CREATED else None,
        etag=etag.strip('"') if etag else None,
        content_type=_wire.optional_text(data.get("contentType"), "blob event contentType"),
        occurred_at=event.time,
        raw=event.raw,
    )


def _blob_path(subject: str | None, data: Mapping[str, Any]) -> tuple[str, str]:
    match = _BLOB_SUBJECT.match(subject or "")
    if match is not None:
        return match.group(1), match.group(2)
    url = data.get("url")
    if isinstance(url, str):
        # https://<account>.blob.core.windows.net/<container>/<blob name, URL-encoded>
        container, _, key = urlsplit(url).path.lstrip("/").partition("/")
        if container and key:
            return container, unquote(key)
    raise MalformedEventError(f"blob event names no blob (subject {subject!r})")


def _length(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEventError("blob event contentLength must be an integer")
    return value


def _base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise MalformedEventError("CloudEvent data_base64 must be a string", code="invalid_base64")
    try:
        return b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEventError(
            "CloudEvent data_base64 is not valid base64", code="invalid_base64"
        ) from None
