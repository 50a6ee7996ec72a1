"""``Retry(delay=...)`` on SQS: a visibility change for each delayed record.

Lambda's poller receives every message with the queue's visibility timeout, and a
record reported in ``batchItemFailures`` reappears when that timeout runs out. With
``handler(app, honor_retry_delay=True)``, a record that failed with
``Retry(delay=N)`` gets its visibility timeout set to ``ceil(N)`` seconds (clamped to
0..43200) after the batch, so it reappears after about ``N`` seconds instead.

The changes are made with ``ChangeMessageVisibilityBatch``: one call per queue and
per 10 records. They are best effort. The response of the invocation is decided
before they start and never depends on them: a change that fails (an error, no
credentials, a receipt handle SQS refuses, too little time left) is logged as a
warning, the record stays reported, and the queue's visibility timeout applies.

Unless a client is given, a botocore client is created on first use, for the
region in the queue's ARN: one attempt per call, 1 s to connect and 2 s to read, so
that a call started with :data:`CALL_TIME` seconds left ends before the deadline.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, cast

from polyserve.errors import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from polyserve.batch import ItemFailure
    from polyserve.context import Context

__all__ = [
    "CALL_TIME",
    "MAX_ENTRIES",
    "MAX_VISIBILITY_TIMEOUT",
    "RetryDelays",
    "VisibilityClient",
    "VisibilityEntry",
    "queue_url",
    "visibility_timeout",
]

MAX_VISIBILITY_TIMEOUT = 43_200
"""SQS's longest visibility timeout, in seconds (12 hours)."""

MAX_ENTRIES = 10
"""SQS's limit on the entries of one ``ChangeMessageVisibilityBatch`` call."""

CALL_TIME = 3.5
"""Seconds of invocation time a call must have left to be started."""

# The DNS suffix of SQS endpoints where a partition's differs from "amazonaws.com".
_DOMAINS = {"aws-cn": "amazonaws.com.cn"}

_CONNECT_TIMEOUT = 1.0
_READ_TIMEOUT = 2.0


class _EntryKeys(TypedDict):
    Id: str
    ReceiptHandle: str


class VisibilityEntry(_EntryKeys, total=False):
    """One entry of ``ChangeMessageVisibilityBatch``, as botocore takes it.

    ``VisibilityTimeout`` is optional in the API, and so here, so that a boto3 SQS
    client typed by ``mypy-boto3-sqs`` is a :class:`VisibilityClient`; polyserve
    always sends it.
    """

    VisibilityTimeout: int


class VisibilityClient(Protocol):
    """What polyserve needs of an SQS client: a boto3 or botocore SQS client is one."""

    def change_message_visibility_batch(
        self, *, QueueUrl: str, Entries: Sequence[VisibilityEntry]
    ) -> Mapping[str, Any]: ...


def queue_url(arn: str) -> str:
    """The URL of the queue named by an SQS ARN.

    ``arn:aws:sqs:eu-west-1:123456789012:orders`` ->
    ``https://sqs.eu-west-1.amazonaws.com/123456789012/orders``.

    Raises:
        ValueError: ``arn`` is not the ARN of an SQS queue.
    """
    fields = arn.split(":")
    if len(fields) != 6 or fields[0] != "arn" or fields[2] != "sqs" or not all(fields[3:]):
        raise ValueError(f"not an SQS queue ARN: {arn!r}")
    _, partition, _, region, account, name = fields
    domain = _DOMAINS.get(partition, "amazonaws.com")
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def visibility_timeout(delay: float) -> int:
    """A ``Retry`` delay as a visibility timeout: whole seconds, rounded up, in 0..43200.

    Raises:
        ValueError: ``delay`` is not a number (NaN).
    """
    if math.isnan(delay):
        raise ValueError("a retry delay of NaN has no visibility timeout")
    return max(0, math.ceil(min(delay, MAX_VISIBILITY_TIMEOUT)))


class RetryDelays:
    """Sets the visibility of SQS records that failed with ``Retry(delay=...)``.

    ``client`` is used for every queue when given; otherwise a botocore client is
    created for each queue's region the first time it is needed.
    """

    def __init__(self, client: VisibilityClient | None = None) -> None:
        self._client = client
        self._clients: dict[str, VisibilityClient] = {}
        self._lock = threading.Lock()

    def client(self, region: str) -> VisibilityClient:
        """The client for queues in ``region``.

        Raises:
            MissingDependencyError: no client was given and botocore is not installed.
        """
        if self._client is not None:
            return self._client
        client = self._clients.get(region)
        if client is None:
            with self._lock:
                client = self._clients.get(region)
                if client is None:
                    client = self._clients[region] = self._new_client(region)
        return client

    def _new_client(self, region: str) -> VisibilityClient:
        try:
            import botocore.session
            from botocore.config import Config
        except ImportError as exc:
            raise MissingDependencyError("botocore", feature="honor_retry_delay") from exc
        config = Config(
            connect_timeout=_CONNECT_TIMEOUT,
            read_timeout=_READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        # botocore directly: boto3 adds nothing to a low-level client but import time.
        # A session of its own, since sessions are not safe to share between threads.
        client = botocore.session.Session().create_client("sqs", region_name=region, config=config)
        return cast("VisibilityClient", client)

    def apply(
        self, records: Sequence[Any], failed: Iterable[ItemFailure], context: Context
    ) -> None:
        """Change the visibility of each record in ``failed`` that has a ``retry_delay``.

        ``records`` are the event's ``Records``; ``failed`` identifies them by
        ``messageId``. Never raises: whatever goes wrong is logged as a warning, and
        the records it concerns keep the queue's visibility timeout.
        """
        delayed = [(f.item_id, f.retry_delay) for f in failed if f.retry_delay is not None]
        if not delayed:
            return
        try:
            self._apply(records, delayed, context)
        except Exception as exc:
            # A fault in polyserve itself must not fail an invocation whose response
            # is already decided.
            context.logger.warning(
                "could not change SQS visibility for Retry(delay=...); "
                "the queue's visibility timeout applies",
                error_type=type(exc).__name__, error=str(exc), unchanged=len(delayed),
            )  # fmt: skip

    def _apply(
        self, records: Sequence[Any], delayed: list[tuple[str, float]], context: Context
    ) -> None:
        calls = _entries_by_queue(records, delayed, context)
        left = sum(len(entries) for _, _, entries in calls)
        for url, region, entries in calls:
            for start in range(0, len(entries), MAX_ENTRIES):
                if not context.has_time_for(CALL_TIME):
                    context.logger.warning(
                        "too little time left to change SQS visibility for Retry(delay=...); "
                        "the queue's visibility timeout applies",
                        remaining_time=context.remaining_time(), unchanged=left,
                    )  # fmt: skip
                    return
                chunk = entries[start : start + MAX_ENTRIES]
                try:
                    response = self.client(region).change_message_visibility_batch(
                        QueueUrl=url, Entries=[entry for entry, _ in chunk]
                    )
                except Exception as exc:
                    # The next call would most likely fail the same way (no
                    # credentials, no permission, no network) and only use up time.
                    context.logger.warning(
                        "ChangeMessageVisibilityBatch failed; "
                        "the queue's visibility timeout applies",
                        queue_url=url, error_type=type(exc).__name__, error=str(exc),
                        unchanged=left,
                    )  # fmt: skip
                    return
                left -= len(chunk)
                _log_refused(response, chunk, url, context)


def _entries_by_queue(
    records: Sequence[Any], delayed: list[tuple[str, float]], context: Context
) -> list[tuple[str, str, list[tuple[VisibilityEntry, str]]]]:
    """``(queue URL, region, [(entry, message id), ...])`` per queue, in batch order."""
    # Records as the batch identified them: by messageId, else by position. A standard
    # queue may deliver one message twice in a batch, so an id can name several records.
    positions: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        try:
            key = str(record["messageId"])
        except (KeyError, TypeError, IndexError):
            key = str(index)
        positions.setdefault(key, []).append(index)
    queues: dict[str, tuple[str, list[tuple[VisibilityEntry, str]]]] = {}
    skipped: list[str] = []
    for message_id, delay in delayed:
        found = positions.get(message_id)
        if not found:
            skipped.append(message_id)
            continue
        index = found.pop(0)
        record = records[index]
        arn = record.get("eventSourceARN")
        receipt = record.get("receiptHandle")
        try:
            if not isinstance(arn, str) or not isinstance(receipt, str) or not receipt:
                raise ValueError("no eventSourceARN or receiptHandle")
            url = queue_url(arn)
            timeout = visibility_timeout(delay)
        except ValueError:
            skipped.append(message_id)
            continue
        entry: VisibilityEntry = {
            "Id": str(index),
            "ReceiptHandle": receipt,
            "VisibilityTimeout": timeout,
        }
        queues.setdefault(url, (arn.split(":")[3], []))[1].append((entry, message_id))
    if skipped:
        context.logger.warning(
            "SQS records without a usable receiptHandle, queue ARN or delay keep the "
            "queue's visibility timeout",
            message_ids=skipped,
        )
    return [(url, region, entries) for url, (region, entries) in queues.items()]


def _log_refused(
    response: Mapping[str, Any],
    chunk: list[tuple[VisibilityEntry, str]],
    url: str,
    context: Context,
) -> None:
    """Log the entries SQS refused (an expired receipt handle, past the 12-hour limit)."""
    failed = response.get("Failed") if isinstance(response, dict) else None
    if not failed:
        return
    message_ids = {entry["Id"]: message_id for entry, message_id in chunk}
    refused = [
        {
            "message_id": message_ids.get(str(item.get("Id")), str(item.get("Id"))),
            "code": item.get("Code"),
            "message": item.get("Message"),
        }
        for item in failed
        if isinstance(item, dict)
    ]
    context.logger.warning(
        "SQS refused some visibility changes; the queue's visibility timeout applies to them",
        queue_url=url, refused=refused,
    )  # fmt: skip
