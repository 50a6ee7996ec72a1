"""Cosmos DB trigger (extension 4.x): an ``azure.functions.DocumentList`` -> ``StreamRecord`` each.

The change feed (latest-version mode) delivers the current version of each
created or replaced document, with no before-image and no deletions: every record
is an ``UPSERT`` with ``new`` set and ``old`` ``None``. Soft-delete with a TTL if
handlers must see removals. The batch is handled in order; the lease advances
after the invocation whether it succeeded or not, so only the function's retry
policy redelivers a failed batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from polyserve.adapter import translating
from polyserve.errors import ConfigurationError, MalformedEventError
from polyserve.events import ChangeType, StreamRecord
from polyserve_azure import _wire

__all__ = ["item_id", "matches", "partition_paths", "read"]


def matches(raw: object) -> bool:
    """True for a batch (a list) of documents; each document is checked when it is decoded."""
    return isinstance(raw, Sequence) and not isinstance(raw, (str, bytes))


def partition_paths(value: object, container: str) -> tuple[str, ...]:
    """The partition key path(s) of a registration's ``partition_key`` option.

    Accepts ``"/tenant"``, ``"tenant"`` or, for hierarchical keys, a list of paths.
    """
    if value is None:
        return ()
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, (list, tuple)) or not all(
        isinstance(p, str) and p.strip("/") for p in paths
    ):
        raise ConfigurationError(
            f"cosmos container {container!r}: partition_key must be a path like '/tenant' "
            "or a list of paths"
        )
    return tuple(p.strip("/") for p in paths)


def read(document: object, *, source: str, partition_key: Sequence[str] = ()) -> StreamRecord:
    """The change record for one document of the container whose logical name is ``source``.

    ``keys`` holds ``id`` and each partition key path that the document has (nested
    paths like ``address/zip`` are followed). ``new`` is the document as delivered,
    system properties (``_etag``, ``_ts``, ``_lsn``, ...) included. ``id`` is the
    document id plus ``@`` and its ``_etag`` (unquoted) when present; ``sequence`` is ``_lsn``;
    ``occurred_at`` comes from ``_ts``.

    Raises:
        MalformedEventError: the document is not a mapping or has no string ``id``.
    """
    with translating("Cosmos DB document"):
        if not isinstance(document, Mapping):
            raise MalformedEventError("a Cosmos DB document must be a mapping")
        new = dict(document)
        ident = _wire.text(new.get("id"), "Cosmos DB document id")
        keys: dict[str, Any] = {"id": ident}
        for path in partition_key:
            found, value = _lookup(new, path)
            if found:
                keys[path] = value
        etag = (_wire.optional_text(new.get("_etag"), "Cosmos DB document _etag") or "").strip('"')
        lsn = new.get("_lsn")
        return StreamRecord(
            id=f"{ident}@{etag}" if etag else ident,
            change=ChangeType.UPSERT,
            source=source,
            keys=keys,
            old=None,
            new=new,
            sequence=None if lsn is None else str(lsn),
            occurred_at=_timestamp(new.get("_ts")),
            raw=document,
        )


def item_id(document: object, index: int) -> str:
    """The id a batch failure reports: the document id, or the position if it has none."""
    if isinstance(document, Mapping) and isinstance(document.get("id"), str):
        return str(document["id"])
    return f"#{index}"


def _lookup(document: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = document
    for part in path.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _timestamp(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedEventError("Cosmos DB document _ts must be a number")
    return dt.datetime.fromtimestamp(value, dt.timezone.utc)
