"""The error that fails an Event Hubs or Cosmos DB invocation when part of its batch failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.errors import PolyserveError

if TYPE_CHECKING:
    from polyserve.batch import BatchResult

__all__ = ["BatchFailedError", "raise_for_failures"]


class BatchFailedError(PolyserveError):
    """Records of a batch failed; raised so the host counts the invocation as failed.

    ``result`` tells which records succeeded and which failed (in order: the first
    failure and every record after it). The first failure's exception is the
    ``__cause__``.
    """

    default_code = "batch_failed"

    def __init__(self, result: BatchResult) -> None:
        first = result.failed[0]
        total = len(result.succeeded) + len(result.failed)
        super().__init__(
            f"{len(result.failed)} of {total} records failed, "
            f"starting at {first.item_id!r}: {first.reason}"
        )
        self.result = result


def raise_for_failures(result: BatchResult) -> None:
    """Raise ``BatchFailedError`` if any record of ``result`` failed."""
    if result.failed:
        raise BatchFailedError(result) from result.failed[0].error
