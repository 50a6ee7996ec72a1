"""The envelope that carries attributes and trace context through a Storage Queue.

A Storage Queue message is its body alone: no properties, no headers. The Azure
backend writes a message as one compact JSON document whose first member is
``"polyserve":1``, holding what other services carry as message attributes: the
attributes sent, ``content-type``, and the trace as ``traceparent`` / ``tracestate``::

    {"polyserve":1,"attributes":{"kind":"created","content-type":"application/json"},"body":"..."}

``body`` is the body as text when it is UTF-8, else ``body_base64``. The queue trigger
(``_queue``) unwraps it, so the handler sees the body and attributes that were sent
and its context continues the producer's trace.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MARKER", "Envelope", "unwrap", "wrap"]

MARKER = b'{"polyserve":1,'


class Envelope:
    """What an envelope held: the body and the attributes (trace headers among them)."""

    __slots__ = ("attributes", "body")

    def __init__(self, body: bytes, attributes: Mapping[str, str]) -> None:
        self.body = body
        self.attributes = attributes


def wrap(body: bytes, attributes: Mapping[str, str]) -> bytes:
    """``body`` and its attributes (``Message.headers()``) as one envelope document."""
    import json

    doc: dict[str, object] = {"polyserve": 1, "attributes": dict(attributes)}
    try:
        doc["body"] = body.decode()
    except UnicodeDecodeError:
        import base64

        doc["body_base64"] = base64.b64encode(body).decode()
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def unwrap(data: bytes) -> Envelope | None:
    """The envelope ``data`` holds, or ``None`` for a plain body (or anything malformed)."""
    if not data.startswith(MARKER):
        return None
    import json

    try:
        doc = json.loads(data)
    except ValueError:
        return None
    attributes = doc.get("attributes", {})
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        return None
    text, encoded = doc.get("body"), doc.get("body_base64")
    if isinstance(text, str):
        body = text.encode()
    elif isinstance(encoded, str):
        import base64
        import binascii

        try:
            body = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            return None
    else:
        return None
    return Envelope(body, attributes)
