"""The envelope that carries attributes and trace context through a Storage Queue.

A Storage Queue message is its body alone: no properties, no headers. When a message
sent with ``polyserve.outbound`` has attributes or a trace, the Azure backend writes
it as one compact JSON document whose first member is ``"polyserve":1``::

    {"polyserve":1,"attributes":{"kind":"created"},"traceparent":"00-...","body":"..."}

``body`` is the body as text when it is UTF-8, else ``body_base64``. The queue trigger
(``_queue``) unwraps it, so the handler sees the body and attributes that were sent
and its context continues the producer's trace. A message without attributes or a
trace is sent as its body alone, which any consumer reads.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MARKER", "Envelope", "unwrap", "wrap"]

MARKER = b'{"polyserve":1,'


class Envelope:
    """What an envelope held: the body, the attributes and the producer's trace headers."""

    __slots__ = ("attributes", "body", "traceparent", "tracestate")

    def __init__(
        self,
        body: bytes,
        attributes: Mapping[str, str],
        traceparent: str | None,
        tracestate: str | None,
    ) -> None:
        self.body = body
        self.attributes = attributes
        self.traceparent = traceparent
        self.tracestate = tracestate


def wrap(
    body: bytes, attributes: Mapping[str, str], traceparent: str | None, tracestate: str | None
) -> bytes:
    """``body`` with its attributes and trace headers as one envelope document."""
    import json

    doc: dict[str, object] = {"polyserve": 1, "attributes": dict(attributes)}
    if traceparent:
        doc["traceparent"] = traceparent
        if tracestate:
            doc["tracestate"] = tracestate
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
    parent, state = doc.get("traceparent"), doc.get("tracestate")
    return Envelope(
        body,
        attributes,
        parent if isinstance(parent, str) else None,
        state if isinstance(state, str) else None,
    )
