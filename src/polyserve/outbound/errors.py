"""The errors outbound resources raise, all under ``PolyserveError``::

    PublishError                  publish_failed       502
    ├── MessageTooLargeError      message_too_large    500  (refused before sending)
    ├── TransientPublishError     publish_unavailable  503  (throttled or unavailable; retried)
    └── BatchPublishError         batch_partially_failed 502
    ObjectNotFoundError           object_not_found     404

``ConfigurationError`` (a missing resource name or credentials) comes from
``polyserve.errors``.
"""

from __future__ import annotations

from polyserve.errors import PolyserveError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from polyserve.outbound.message import Failure

__all__ = [
    "BatchPublishError",
    "MessageTooLargeError",
    "ObjectNotFoundError",
    "PublishError",
    "TransientPublishError",
]


class PublishError(PolyserveError):
    """A message or object could not be sent to its queue, topic or bucket."""

    default_code = "publish_failed"
    default_status = 502


class MessageTooLargeError(PublishError):
    """The payload is larger than the service accepts; nothing was sent.

    ``limit`` is the service's limit in bytes, ``size`` the payload's size.
    """

    default_code = "message_too_large"
    default_status = 500

    def __init__(self, resource: str, size: int, limit: int, service: str) -> None:
        super().__init__(
            f"a message of {size} bytes for {resource!r} exceeds {service}'s limit of {limit} bytes"
        )
        self.resource = resource
        self.size = size
        self.limit = limit
        self.service = service


class TransientPublishError(PublishError):
    """The service throttled the send or was briefly unavailable; sending again may succeed."""

    default_code = "publish_unavailable"
    default_status = 503


class BatchPublishError(PublishError):
    """Some messages of a batch were not sent. ``failures`` holds exactly those, in order."""

    default_code = "batch_partially_failed"

    def __init__(self, resource: str, failures: Sequence[Failure], sent: int) -> None:
        super().__init__(
            f"{len(failures)} of {len(failures) + sent} messages for {resource!r} were not sent"
        )
        self.failures = tuple(failures)
        self.sent = sent

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "failed": len(self.failures)}


class ObjectNotFoundError(PolyserveError):
    """The bucket holds no object under the key."""

    default_code = "object_not_found"
    default_status = 404
    is_exposed = True
