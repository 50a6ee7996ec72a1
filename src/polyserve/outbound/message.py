"""One outbound message: its body, encoded once, and what travels with it."""

from __future__ import annotations

import sys

from polyserve._json import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from polyserve.events.cloudevent import CloudEvent
    from polyserve.tracing import TraceContext

__all__ = ["STRUCTURED_TYPE", "Failure", "Message", "encode_payload"]

STRUCTURED_TYPE = "application/cloudevents+json; charset=utf-8"
"""The media type of a CloudEvent in structured mode (JSON)."""


def encode_payload(payload: Any) -> tuple[bytes, str]:
    """``payload`` as bytes and its media type, encoded the way responses are.

    bytes stay as they are (``application/octet-stream``), text is UTF-8
    (``text/plain``), a ``CloudEvent`` is its structured JSON form
    (``application/cloudevents+json``); anything else (dicts, lists, pydantic models,
    dataclasses) is compact JSON.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload), "application/octet-stream"
    if isinstance(payload, str):
        return payload.encode(), "text/plain; charset=utf-8"
    if _cloudevent(payload):
        from polyserve.outbound.cloudevents import to_structured

        return to_structured(payload), STRUCTURED_TYPE
    return dumps(payload), "application/json"


def _cloudevent(payload: Any) -> bool:
    # A payload can be a CloudEvent only once its module is loaded: sending anything
    # else does not load it.
    module = sys.modules.get("polyserve.events.cloudevent")
    return module is not None and isinstance(payload, module.CloudEvent)


class Message:
    """An encoded message as a backend receives it.

    ``key`` orders messages (SQS FIFO group id, Pub/Sub ordering key, Service Bus
    session id); ``dedup_id`` lets the service drop a repeat; ``trace`` is the
    producer's trace, written into the message so that the consumer continues it.
    ``cloudevent`` is the ``CloudEvent`` the message was made from, if any: ``body`` is
    then its structured form, which backends whose service has a CloudEvents binding
    (Pub/Sub's binary mode, EventBridge) write their own way instead.
    """

    __slots__ = (
        "attributes", "body", "cloudevent", "content_type", "dedup_id", "delay", "key", "trace",
    )  # fmt: skip

    def __init__(
        self,
        body: bytes,
        content_type: str,
        attributes: Mapping[str, str],
        key: str | None = None,
        dedup_id: str | None = None,
        delay: int = 0,
        trace: TraceContext | None = None,
        cloudevent: CloudEvent | None = None,
    ) -> None:
        self.body = body
        self.content_type = content_type
        self.attributes = attributes
        self.key = key
        self.dedup_id = dedup_id
        self.delay = delay
        self.trace = trace
        self.cloudevent = cloudevent

    def headers(self) -> dict[str, str]:
        """The attributes with the content type and trace headers added, as most services carry them."""
        out = dict(self.attributes)
        out["content-type"] = self.content_type
        trace = self.trace
        if trace is not None:
            parent = trace.traceparent
            if parent is not None:
                out["traceparent"] = parent
                if trace.tracestate:
                    out["tracestate"] = trace.tracestate
        return out

    def __repr__(self) -> str:  # the body stays out of logs
        return f"Message({len(self.body)} bytes, {self.content_type!r}, key={self.key!r})"


class Failure:
    """A message of a batch that was not sent: its position, the message and why."""

    __slots__ = ("error", "index", "message")

    def __init__(self, index: int, message: Message, error: Exception) -> None:
        self.index = index
        self.message = message
        self.error = error

    def __repr__(self) -> str:
        return f"Failure({self.index}, {type(self.error).__name__}: {self.error})"
