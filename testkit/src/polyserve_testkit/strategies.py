"""Hypothesis strategies for polyserve's typed events: the one place tests draw them from."""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

from hypothesis import strategies as st

from polyserve import CloudEvent, Headers, HttpRequest, Message, QueryParams
from polyserve.tracing import TraceContext

__all__ = [
    "any_text",
    "cloudevents",
    "encoded_paths",
    "header_names",
    "http_requests",
    "injected_headers",
    "message_indexes",
    "messages",
    "nested_json",
    "outbound_sends",
    "path_segments",
]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_SEGMENT_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@ %?#/é€"

# Header names used by the providers themselves are left out: platforms set them.
_RESERVED = frozenset(
    {"content-length", "host", "connection", "transfer-encoding", "cookie", "content-type",
     "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "x-request-id", "te", "upgrade",
     "expect", "keep-alive", "trailer", "proxy-connection", "authorization"}
)  # fmt: skip


def path_segments() -> st.SearchStrategy[str]:
    """One path segment: never empty, never '.' or '..', may hold characters that need encoding."""
    return st.text(_SEGMENT_CHARS, min_size=1, max_size=12).filter(
        lambda s: s not in (".", "..") and "/" not in s
    )


def header_names() -> st.SearchStrategy[str]:
    return (
        st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=16)
        .map(lambda s: "x-" + s)
        .filter(lambda s: s not in _RESERVED)
    )


_header_values = (
    st.text(string.ascii_letters + string.digits + " -_.:/=+;", min_size=1, max_size=24)
    .map(str.strip)
    .filter(bool)
)

_query_keys = st.text(string.ascii_letters + string.digits + "_-. é", min_size=1, max_size=8)
_query_values = st.text(string.ascii_letters + string.digits + "_-. é&=+/?", max_size=12)

_cookie_names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
_cookie_values = st.text(string.ascii_letters + string.digits + "_-.", max_size=12)


@st.composite
def http_requests(draw: st.DrawFn, *, prefix: str = "/echo") -> HttpRequest:
    """A request to ``prefix/...``: encoded path characters, repeated query keys and headers,
    cookies, and a text or binary body (a body only for methods that carry one)."""
    method = draw(st.sampled_from(METHODS))
    segments = draw(st.lists(path_segments(), min_size=1, max_size=3))
    query = draw(st.lists(st.tuples(_query_keys, _query_values), max_size=4))
    repeated = draw(st.lists(st.tuples(header_names(), _header_values), max_size=4))
    headers = list(repeated)
    duplicate: bool = draw(st.booleans())
    if repeated and duplicate:
        headers.append((repeated[0][0], draw(_header_values)))  # one name, two values
    cookies = draw(st.dictionaries(_cookie_names, _cookie_values, max_size=3))
    if cookies:
        headers.append(("cookie", "; ".join(f"{k}={v}" for k, v in cookies.items())))
    body = b""
    if method in ("POST", "PUT", "PATCH"):
        kind = draw(st.sampled_from(["text", "json", "binary", "empty"]))
        if kind == "text":
            body = draw(st.text(max_size=64)).encode()
            headers.append(("content-type", "text/plain; charset=utf-8"))
        elif kind == "json":
            body = b'{"n": %d}' % draw(st.integers(-1000, 1000))
            headers.append(("content-type", "application/json"))
        elif kind == "binary":
            body = draw(st.binary(min_size=1, max_size=64))
            headers.append(("content-type", "application/octet-stream"))
    return HttpRequest(
        method=method,
        path=prefix + "/" + "/".join(segments),
        query=QueryParams(query),
        headers=Headers(headers),
        body=body,
        client=draw(st.sampled_from(["203.0.113.7", "198.51.100.23", "2001:db8::1"])),
        request_id=draw(st.uuids()).hex,
    )


_attr_names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10)
_attr_values = st.text(string.ascii_letters + string.digits + " _-.:/", min_size=1, max_size=16)


@st.composite
def messages(draw: st.DrawFn, *, source: str = "orders") -> Message:
    """A queue message: text or binary body, string attributes, an attempt count and a
    whole-second enqueue time (the coarsest precision any provider keeps)."""
    if draw(st.booleans()):
        body = draw(st.text(max_size=64)).encode()
    else:
        body = draw(st.binary(max_size=64))
    when = draw(
        st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1))
    ).replace(microsecond=0, tzinfo=dt.timezone.utc)
    return Message(
        id=draw(st.uuids()).hex,
        body=body,
        attributes=draw(st.dictionaries(_attr_names, _attr_values, max_size=3)),
        attempt=draw(st.integers(1, 20)),
        enqueued_at=when,
        source=source,
        group_key=None,
    )


@st.composite
def nested_json(draw: st.DrawFn) -> bytes:
    """A JSON array or object nested from one level to far past any parser's stack
    (100,000 levels, a few hundred kilobytes), as a hostile client sends it."""
    depth = draw(st.integers(1, 2_000) | st.sampled_from([100_000]))
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


_CONTROLS = [chr(c) for c in range(32) if c != 9] + ["\x7f"]
INJECTED = "Set-Cookie: stolen=1"
"""The text an injected header carries after its line break; it must reach no client."""


@st.composite
def injected_headers(draw: st.DrawFn) -> tuple[str, str]:
    """A response header HTTP cannot carry: a control character (CR, LF, NUL...) in
    the value before ``INJECTED``, or a name that is not a token."""
    name = draw(header_names())
    control = draw(st.sampled_from(["\r\n", "\n", "\r", "\x00", *_CONTROLS]))
    if draw(st.booleans()):
        return name, draw(_header_values) + control + INJECTED
    return name + control + draw(st.sampled_from(["", "x-b"])), draw(_header_values)


def any_text(*, min_size: int = 0) -> st.SearchStrategy[str]:
    """Text no well-behaved client sends: lone surrogates, NUL and other controls,
    escapes that are not, dot segments, a hundred thousand characters."""
    return st.text(st.characters(exclude_categories=()), min_size=min_size, max_size=24) | (
        st.sampled_from(
            ["\x00", "\ud800", "G\ud800T", "%", "%zz", "%2F", "%FF%FE", "%00", "..", "/..",
             "?", "#", "\r\n", "x" * 100_000, "\udc80" * 10_000]
        )
    )  # fmt: skip


_PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"


@st.composite
def _path_token(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["literal", "utf8", "byte", "malformed"]))
    if kind == "literal":
        return draw(st.text(_PATH_CHARS, min_size=1, max_size=3))
    if kind == "utf8":  # a character as a client encodes it
        char = draw(st.characters(codec="utf-8"))
        return "".join(f"%{b:02X}" for b in char.encode())
    if kind == "byte":  # any byte: %2F, %00, %2E, or one that breaks UTF-8
        byte = draw(st.integers(0, 255) | st.sampled_from([0x2F, 0x2E, 0x25]))
        return draw(st.sampled_from([f"%{byte:02X}", f"%{byte:02x}"]))
    return "%" + draw(st.sampled_from(["", "4", "g", "4g", "z1", "%"]))


@st.composite
def encoded_paths(draw: st.DrawFn, *, prefix: str = "/p/") -> str:
    """A path as a client sends it, below ``prefix``: escapes of characters and of any
    byte (an encoded slash among them), and escapes that are malformed."""
    segments = draw(
        st.lists(
            st.lists(_path_token(), min_size=1, max_size=4).map("".join), min_size=1, max_size=3
        )
    )
    return prefix + "/".join(segments)


# Text every cloud's queues carry as it is: SQS refuses control characters and
# surrogates, so the strategies that go through every cloud leave them out.
_CARRIED_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\n\t"),
    max_size=40,
)
_JSON_VALUES = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _CARRIED_TEXT


@st.composite
def outbound_sends(draw: st.DrawFn, *, binary: bool = True) -> dict[str, object]:
    """The arguments of one ``Queue.send``: a payload (bytes, text or a JSON object),
    attributes, an ordering key and a trace. Attribute names suit every cloud (SQS's
    are letters, digits, ``-``, ``_``; Pub/Sub's do not start with ``goog``), and there
    are few enough for SQS's ten with the content type and trace added. Without
    ``binary``, bytes payloads are UTF-8 text (for a service that carries text only).
    """
    text = _CARRIED_TEXT.filter(bool)
    data = st.binary(min_size=1, max_size=300) if binary else text.map(lambda t: t.encode())
    objects = st.dictionaries(_CARRIED_TEXT, _JSON_VALUES, min_size=1, max_size=4)
    payloads: list[st.SearchStrategy[Any]] = [text, objects, data]
    names = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True).filter(
        lambda n: not n.startswith("goog") and n not in ("content-type", "traceparent")
    )
    values = st.text(string.ascii_letters + string.digits + " .:/-_", min_size=1, max_size=30)
    ids = st.text("0123456789abcdef", min_size=32, max_size=32).filter(lambda h: set(h) != {"0"})
    spans = st.text("0123456789abcdef", min_size=16, max_size=16).filter(lambda h: set(h) != {"0"})
    trace = st.none() | st.builds(TraceContext, ids, spans, st.booleans())
    return {
        "payload": draw(st.one_of(*payloads)),
        "attributes": draw(st.dictionaries(names, values, max_size=5)),
        "key": draw(st.none() | st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True)),
        "trace": draw(trace),
    }


_CE_RESERVED = frozenset(
    ("specversion", "id", "source", "type", "subject", "datacontenttype", "dataschema", "time",
     "data", "traceparent", "tracestate")
)  # fmt: skip


@st.composite
def cloudevents(draw: st.DrawFn, *, plain_names: bool = False) -> CloudEvent:
    """A CloudEvent whose ``datacontenttype`` says what its data is (bytes with none or
    a binary type, a JSON value with a JSON type, text with a text type), with text
    extensions and UTC times: the events that read back equal in every mode. With
    ``plain_names``, id, source and type are letters, digits and ``./:_-`` (moto's
    EventBridge fails on some other characters)."""
    short = st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
        min_size=1,
        max_size=30,
    )
    names_text = (
        st.text(string.ascii_letters + string.digits + "./:_-", min_size=1, max_size=30)
        if plain_names
        else short
    )
    json_value = st.one_of(
        st.dictionaries(_CARRIED_TEXT, _JSON_VALUES, max_size=4),
        st.lists(_JSON_VALUES, max_size=4),
        _CARRIED_TEXT,
        st.integers(-(2**53), 2**53),
        st.booleans(),
    )
    data, media = draw(
        st.one_of(
            st.tuples(st.binary(min_size=1, max_size=200), st.just(None)),
            st.tuples(st.binary(min_size=1, max_size=200), st.just("application/octet-stream")),
            st.tuples(json_value, st.sampled_from(["application/json", "application/ld+json"])),
            st.tuples(_CARRIED_TEXT.filter(bool), st.just("text/plain; charset=utf-8")),
        )
    )
    names = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True).filter(
        lambda n: n not in _CE_RESERVED
    )
    times = st.datetimes(
        min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.timezone.utc),
    )  # fmt: skip
    return CloudEvent(
        id=draw(names_text),
        source=draw(names_text),
        type=draw(names_text),
        subject=draw(st.none() | short),
        time=draw(st.none() | times),
        datacontenttype=media,
        dataschema=draw(st.none() | st.just("https://example.com/schema.json")),
        data=data,
        extensions=draw(st.dictionaries(names, short, max_size=3)),
    )


def message_indexes() -> st.SearchStrategy[list[int]]:
    """The Protobuf message indexes of the schema registry wire format: a path of
    non-negative int32 indexes, from a top-level message down to a nested one."""
    return st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=8)
