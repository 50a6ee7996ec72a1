"""AWS specifics of reading events: the first record of a batch, ARNs and logical names.

The generic field readers (text, objects, timestamps, base64) are
``polyserve.adapter``'s, shared with the other adapters.
"""

from __future__ import annotations

from functools import lru_cache

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["ENCODING_ATTRIBUTE", "decoded_body", "first_record", "logical_name", "resource_name"]

ENCODING_ATTRIBUTE = "content-transfer-encoding"
"""The message attribute that marks an SQS or SNS body as base64 (``polyserve_aws.outbound``
writes it for bytes SQS and SNS cannot carry as text)."""


def first_record(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first entry of ``Records`` if it is an object, which says what sent the batch."""
    records = raw.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return records[0]
    return None


@lru_cache(maxsize=256)
def resource_name(arn: str) -> str:
    """The short name in an ARN: the last ``:``-part, and of that the name after a type prefix.

    ``arn:aws:sqs:r:a:orders`` -> ``orders``; ``arn:aws:kinesis:r:a:stream/clicks`` ->
    ``clicks``; ``arn:aws:dynamodb:r:a:table/Pets/stream/2024-01-01T00:00:00.000`` -> ``Pets``;
    ``arn:aws:scheduler:r:a:schedule/default/nightly`` -> ``nightly``.
    """
    # arn:partition:service:region:account:resource; the resource may itself hold ':'
    # (a DynamoDB stream label is a timestamp).
    fields = arn.split(":", 5)
    resource = fields[5] if len(fields) == 6 and fields[0] == "arn" else arn
    parts = resource.split("/")
    if len(parts) >= 4 and parts[0] == "table":  # a DynamoDB stream ARN ends in /stream/<label>
        return parts[1]
    return parts[-1]


def logical_name(native: str, names: Mapping[str, str]) -> str:
    """The registration name for a native source: ``names[arn]``, ``names[short]`` or short."""
    if names:
        mapped = names.get(native)
        if mapped is not None:
            return mapped
        short = resource_name(native)
        return names.get(short, short)
    return resource_name(native)


def decoded_body(body: str, attributes: dict[str, str], what: str) -> bytes:
    """The bytes of an SQS or SNS body: base64-decoded, and the marking attribute removed,
    when ``attributes`` say ``content-transfer-encoding: base64``; else its UTF-8.

    Raises:
        MalformedEventError: the body is marked base64 but is not.
    """
    if attributes.get(ENCODING_ATTRIBUTE) != "base64":
        return body.encode()
    import base64
    import binascii

    del attributes[ENCODING_ATTRIBUTE]
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        from polyserve.errors import MalformedEventError

        raise MalformedEventError(f"{what} body is marked base64 but is not") from None
