"""Trace context: the distributed trace an invocation belongs to.

Every platform passes a trace along in its own format; ``TraceContext`` holds it
in one form. ``trace_id`` is the W3C form (32 lower-case hex digits) wherever the
source carries a W3C-compatible id; ``span_id`` (16 hex digits) is the caller's
span, the parent of this invocation's work.

Recognised formats:

====================  ==========================================================
W3C ``traceparent``   ``00-<trace-id>-<span-id>-<flags>``, with ``tracestate``
AWS X-Ray             ``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1``
                      (the ``X-Amzn-Trace-Id`` header, ``_X_AMZN_TRACE_ID``, SQS's
                      ``AWSTraceHeader``)
Google Cloud          ``X-Cloud-Trace-Context: <32 hex>/<decimal span>;o=1``
Azure ``Request-Id``  ``|<32 hex>.<16 hex>.`` (hierarchical Application Insights ids)
Cloudflare            ``cf-ray: <16 hex>-<colo>``: a ray id, not a W3C trace; it is
                      kept as the trace id so that logs correlate with Cloudflare's
====================  ==========================================================

A malformed value is ignored (the parser returns ``None``), never an error: a
client controls these headers.
"""

from __future__ import annotations

from polyserve._value import Value

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "TraceContext",
    "from_cf_ray",
    "from_cloud_trace",
    "from_headers",
    "from_request_id",
    "from_traceparent",
    "from_xray",
    "of_event",
]

_HEX = frozenset("0123456789abcdef")


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and _HEX.issuperset(value) and value.strip("0") != ""


class TraceContext(Value):
    """A distributed trace and the caller's span in it.

    ``source`` names the format it was read from (``"traceparent"``, ``"xray"``,
    ``"cloud-trace"``, ``"request-id"``, ``"cf-ray"``); ``sampled`` is the caller's
    sampling decision where the format carries one. ``tracestate`` is W3C's
    vendor data, passed on unchanged. Immutable; equal when every field is.
    """

    __slots__ = ("sampled", "source", "span_id", "trace_id", "tracestate")
    _fields = ("trace_id", "span_id", "sampled", "source", "tracestate")

    trace_id: str
    span_id: str | None
    sampled: bool | None
    source: str
    tracestate: str | None

    def __init__(
        self,
        trace_id: str,
        span_id: str | None = None,
        sampled: bool | None = None,
        source: str = "traceparent",
        tracestate: str | None = None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "trace_id", trace_id)
        set_field(self, "span_id", span_id)
        set_field(self, "sampled", sampled)
        set_field(self, "source", source)
        set_field(self, "tracestate", tracestate)

    @property
    def traceparent(self) -> str | None:
        """This context as a W3C ``traceparent`` value, when its ids are W3C ids."""
        if not _is_hex(self.trace_id, 32) or self.span_id is None:
            return None
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @property
    def xray_id(self) -> str | None:
        """The trace id in X-Ray's form (``1-<8 hex>-<24 hex>``), when it is a W3C id."""
        if not _is_hex(self.trace_id, 32):
            return None
        return f"1-{self.trace_id[:8]}-{self.trace_id[8:]}"


def from_traceparent(value: object, tracestate: object = None) -> TraceContext | None:
    """The W3C ``traceparent`` header (version 00 and later versions' first fields)."""
    if not isinstance(value, str):
        return None
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or parts[0] == "ff" or not _HEX.issuperset(parts[0]) or len(parts[0]) != 2:
        return None
    if parts[0] == "00" and len(parts) != 4:
        return None
    _, trace_id, span_id, flags = parts[:4]
    if not (_is_hex(trace_id, 32) and _is_hex(span_id, 16)) or len(flags) != 2:
        return None
    if not _HEX.issuperset(flags):
        return None
    state = tracestate if isinstance(tracestate, str) and tracestate else None
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1), "traceparent", state)


def from_xray(value: object) -> TraceContext | None:
    """An X-Ray trace header: ``Root=1-5759e988-bd862e3fe1be46a994272793;Parent=...;Sampled=1``."""
    if not isinstance(value, str):
        return None
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, item = part.strip().partition("=")
        if sep:
            fields[key.strip().lower()] = item.strip()
    root = fields.get("root", "").lower().split("-")
    if len(root) != 3 or root[0] != "1" or len(root[1]) != 8 or len(root[2]) != 24:
        return None
    trace_id = root[1] + root[2]
    if not _is_hex(trace_id, 32):
        return None
    parent = fields.get("parent", "").lower()
    sampled = fields.get("sampled")
    return TraceContext(
        trace_id,
        parent if _is_hex(parent, 16) else None,
        None if sampled not in ("0", "1") else sampled == "1",
        "xray",
    )


def from_cloud_trace(value: object) -> TraceContext | None:
    """Google's ``X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS`` (span id in decimal)."""
    if not isinstance(value, str):
        return None
    head, _, options = value.strip().partition(";")
    trace_id, _, span = head.partition("/")
    trace_id = trace_id.lower()
    if not _is_hex(trace_id, 32):
        return None
    span_id = None
    if span.isascii() and span.isdigit() and 0 < int(span) < 2**64:
        span_id = f"{int(span):016x}"
    sampled = None
    if options.startswith("o="):
        sampled = options[2:].strip() == "1"
    return TraceContext(trace_id, span_id, sampled, "cloud-trace")


def from_request_id(value: object) -> TraceContext | None:
    """Application Insights' hierarchical ``Request-Id``: ``|<trace id>.<span id>.``."""
    if not isinstance(value, str) or not value.startswith("|"):
        return None
    parts = value[1:].lower().split(".")
    if len(parts) < 2 or not _is_hex(parts[0], 32):
        return None
    span_id = parts[1] if _is_hex(parts[1], 16) else None
    return TraceContext(parts[0], span_id, None, "request-id")


def from_cf_ray(value: object) -> TraceContext | None:
    """Cloudflare's ray id, ``<16 hex>-<colo>``, kept as the trace id."""
    if not isinstance(value, str):
        return None
    ray, _, _colo = value.strip().lower().partition("-")
    if not _is_hex(ray, 16):
        return None
    return TraceContext(ray, None, None, "cf-ray")


# Header name -> parser, in the order they are tried: the W3C standard first.
_HEADER_PARSERS: tuple[tuple[str, Callable[[object], TraceContext | None]], ...] = (
    ("x-amzn-trace-id", from_xray),
    ("x-cloud-trace-context", from_cloud_trace),
    ("request-id", from_request_id),
    ("cf-ray", from_cf_ray),
)


def from_headers(
    headers: Mapping[str, str], *, formats: Iterable[str] | None = None
) -> TraceContext | None:
    """The trace context in HTTP headers (names lower-case), or in message attributes.

    ``traceparent`` (with ``tracestate``) is tried first, then the platforms'
    own headers; ``formats`` limits the ones tried, by header name.
    """
    wanted = None if formats is None else frozenset(formats)
    if wanted is None or "traceparent" in wanted:
        found = from_traceparent(headers.get("traceparent"), headers.get("tracestate"))
        if found is not None:
            return found
    for name, parse in _HEADER_PARSERS:
        if wanted is not None and name not in wanted:
            continue
        value = headers.get(name)
        if value is not None:
            found = parse(value)
            if found is not None:
                return found
    return None


def of_event(event: object) -> TraceContext | None:
    """The trace a CloudEvent was sent in: its ``traceparent`` extension (the
    CloudEvents distributed tracing extension); ``None`` for other events."""
    extensions = getattr(event, "extensions", None)
    if extensions and hasattr(extensions, "get") and "traceparent" in extensions:
        return from_traceparent(extensions.get("traceparent"), extensions.get("tracestate"))
    return None
