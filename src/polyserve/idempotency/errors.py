"""The errors of ``polyserve.idempotency``.

They belong to the tree of ``polyserve.errors``, which also gives them by name,
but live here so that an app that does not use idempotency does not build
them at cold start.
"""

from __future__ import annotations

from polyserve.errors import PolyserveError

__all__ = [
    "CorruptRecordError",
    "IdempotencyError",
    "InProgressError",
    "KeyMissingError",
    "PayloadMismatchError",
    "RecordTooLargeError",
    "StoreUnavailableError",
]


class IdempotencyError(PolyserveError):
    """Base of the errors raised by ``polyserve.idempotency``."""

    default_code = "idempotency_error"


class InProgressError(IdempotencyError):
    """Another invocation with the same idempotency key is still running."""

    default_code = "in_progress"
    default_status = 409


class KeyMissingError(IdempotencyError):
    """The idempotency key could not be extracted from the event."""

    default_code = "idempotency_key_missing"
    default_status = 400


class PayloadMismatchError(IdempotencyError):
    """The idempotency key was reused with a different payload."""

    default_code = "payload_mismatch"
    default_status = 422


class RecordTooLargeError(IdempotencyError):
    """The result is too large for the idempotency store."""

    default_code = "record_too_large"


class CorruptRecordError(IdempotencyError):
    """A stored idempotency record could not be read back."""

    default_code = "corrupt_record"


class StoreUnavailableError(IdempotencyError):
    """The idempotency store could not be reached; the invocation fails so it is retried."""

    default_code = "store_unavailable"
    default_status = 503
    is_exposed = True
