"""HTTP requests and responses, the same whichever provider delivered them."""

from __future__ import annotations

from dataclasses import dataclass, field

from polyserve._frozen import fast_init
from polyserve._json import dumps
from polyserve.errors import InvalidHeaderError
from polyserve.events._body import parse_json
from polyserve.events.headers import Headers, QueryParams

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable, Mapping
    from typing import Any, Literal

    from polyserve.streaming import StreamingResponse


__all__ = ["Headers", "HttpRequest", "HttpResponse", "QueryParams", "check_header"]

# Shared empty instances: both types are immutable, and requests default to them.
_NO_QUERY = QueryParams()
_NO_HEADERS = Headers()


# Every function's first request creates these two classes. Their __init__ comes from
# fast_init, and __repr__, __eq__ and __hash__ are written out below, because
# dataclasses compiles each method it generates on its own: about 3.5 million
# instructions per class that a cold start no longer pays.
@fast_init
@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class HttpRequest:
    """An HTTP request, decoded from whichever provider delivered it.

    ``path`` is percent-decoded. ``body`` is the raw bytes; ``text`` and ``json()``
    decode it. ``raw`` is the provider's native event, an escape hatch that takes
    no part in equality.
    """

    method: str
    path: str
    query: QueryParams = _NO_QUERY
    headers: Headers = _NO_HEADERS
    body: bytes = b""
    path_params: Mapping[str, Any] = field(default_factory=dict)
    client: str | None = None
    request_id: str = ""
    raw: Any = field(default=None, compare=False, repr=False)

    if TYPE_CHECKING:  # the __init__ fast_init gives, as type checkers should see it

        def __init__(
            self, method: str, path: str, query: QueryParams = _NO_QUERY,
            headers: Headers = _NO_HEADERS, body: bytes = b"",
            path_params: Mapping[str, Any] = ..., client: str | None = None,
            request_id: str = "", raw: Any = None,
        ) -> None: ...  # fmt: skip

    def _compared(self) -> tuple[Any, ...]:
        # Every field but raw, which takes no part in equality or repr.
        return (
            self.method, self.path, self.query, self.headers, self.body,
            self.path_params, self.client, self.request_id,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, HttpRequest)
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())  # TypeError: path_params is a dict

    def __repr__(self) -> str:
        return (
            f"{type(self).__qualname__}(method={self.method!r}, path={self.path!r}, "
            f"query={self.query!r}, headers={self.headers!r}, body={self.body!r}, "
            f"path_params={self.path_params!r}, client={self.client!r}, "
            f"request_id={self.request_id!r})"
        )

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies from every ``Cookie`` header; a malformed pair is skipped, never fatal."""
        jar: dict[str, str] = {}
        for header in self.headers.get_all("cookie"):
            for part in header.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep and name:
                    jar.setdefault(name, _unquote_cookie(value.strip()))
        return jar

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters ('' if absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes are replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            MalformedEventError: code ``invalid_json`` when the body is not JSON.
        """
        return parse_json(self.body, "request body")

    def with_path_params(self, params: Mapping[str, Any]) -> HttpRequest:
        """A copy carrying the matched route's path parameters."""
        # Positional construction: several times faster than dataclasses.replace.
        return HttpRequest(
            self.method, self.path, self.query, self.headers, self.body,
            params, self.client, self.request_id, self.raw,
        )  # fmt: skip


def _unquote_cookie(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


# Headers are immutable, so the common bare content types are built once.
_CONTENT_TYPES = {
    t: Headers((("content-type", t),))
    for t in ("application/json", "text/plain; charset=utf-8", "application/octet-stream")
}

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES = ("+json", "+xml")


# RFC 9110 5.6.2: a header name is a token of these characters.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# RFC 9110 5.5: the control characters a header value must not hold (tab is allowed).
# CR and LF would end the header (and let what follows forge others), NUL ends it in C.
_CONTROLS = frozenset([chr(c) for c in range(32) if c != 9] + ["\x7f"])


def check_header(name: str, value: str) -> None:
    """Refuse a response header that HTTP cannot carry.

    Raises:
        InvalidHeaderError: ``name`` is not a token, ``value`` holds a control
            character (CR, LF, NUL, ... but tab), or either is not a string. The
            message names the header, never the value.
    """
    # Most names are letters, digits and dashes: checked in C first, char by char
    # only otherwise.
    if not isinstance(name, str) or not (
        (name.isascii() and name.replace("-", "").isalnum()) or (name and _TOKEN.issuperset(name))
    ):
        shown = repr(name[:64]) if isinstance(name, str) else type(name).__name__
        raise InvalidHeaderError(f"response header name {shown} is not an HTTP token")
    if not isinstance(value, str):
        raise InvalidHeaderError(f"response header {name!r} has a value that is not a string")
    # isprintable() is False for every control character (and for some harmless
    # non-ASCII ones): only then is each character looked at.
    if not value.isprintable() and not _CONTROLS.isdisjoint(value):
        raise InvalidHeaderError(f"response header {name!r} has a control character")


@fast_init
@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class HttpResponse:
    """An HTTP response. Build one with ``json``, ``text``, ``binary`` or ``empty``.

    Every header is checked when the response is built, however it is built (the
    constructors below, ``HttpResponse(...)``, ``with_header``, ``set_cookie``).

    Raises:
        InvalidHeaderError: a header name is not a token or a value holds a control
            character such as CR, LF or NUL (see ``check_header``).
    """

    status: int = 200
    headers: Headers = _NO_HEADERS
    body: bytes = b""

    if TYPE_CHECKING:  # the __init__ fast_init gives, as type checkers should see it

        def __init__(
            self, status: int = 200, headers: Headers = _NO_HEADERS, body: bytes = b""
        ) -> None: ...

    def __post_init__(self) -> None:
        headers = self.headers
        if id(headers) in _BUILT_HERE:  # this module's own, valid by construction
            return
        for name, value in headers._pairs():
            # The usual header passes these C calls; check_header has the last word
            # on any other (a "_" in a name, a tab in a value, or no string at all).
            try:
                if name.isascii() and name.replace("-", "").isalnum() and value.isprintable():
                    continue
            except AttributeError:
                pass
            check_header(name, value)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, HttpResponse)
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)

    def __hash__(self) -> int:
        return hash((self.status, self.headers, self.body))

    def __repr__(self) -> str:
        return (
            f"{type(self).__qualname__}(status={self.status!r}, headers={self.headers!r}, "
            f"body={self.body!r})"
        )

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """A JSON response; pydantic models, dataclasses, datetimes and UUIDs are encoded."""
        return cls._make(status, dumps(data), "application/json", headers)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        media_type: str = "text/plain",
    ) -> HttpResponse:
        """A text response, UTF-8 encoded."""
        return cls._make(status, text.encode(), f"{media_type}; charset=utf-8", headers)

    @classmethod
    def binary(
        cls,
        data: bytes,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        media_type: str = "application/octet-stream",
    ) -> HttpResponse:
        """A binary response; adapters base64-encode it where the provider needs that."""
        return cls._make(status, bytes(data), media_type, headers)

    @classmethod
    def stream(
        cls,
        chunks: Iterable[bytes | str] | AsyncIterable[bytes | str],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        media_type: str = "application/octet-stream",
    ) -> StreamingResponse:
        """A response whose body is sent chunk by chunk where the platform can
        (see ``polyserve.streaming``); ``str`` chunks are sent UTF-8 encoded."""
        from polyserve.streaming import StreamingResponse

        merged = Headers(headers) if headers else Headers()
        if "content-type" not in merged:
            merged = merged.with_added("content-type", media_type)
        return StreamingResponse(status, merged, b"", chunks)

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> HttpResponse:
        """A response with no body."""
        if not headers:
            return cls(status, _NO_HEADERS, b"")
        return cls(status, Headers(headers), b"")

    @classmethod
    def problem(
        cls,
        status: int,
        code: str,
        detail: str,
        *,
        invocation_id: str = "",
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """An ``application/problem+json`` (RFC 9457) error with a stable, machine-readable ``code``.

        ``extra`` adds members (for example ``errors``); ``code``, ``detail`` and
        ``invocation_id`` always win over them.
        """
        title = (_PHRASES or _load_phrases()).get(status, "Error")
        body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
        if extra:
            body.update(extra)
        body["code"] = code
        body["detail"] = detail
        if invocation_id:
            body["invocation_id"] = invocation_id
        if not headers:
            return cls(status, _PROBLEM, dumps(body))
        merged = Headers(headers).with_set("content-type", "application/problem+json")
        return cls(status, merged, dumps(body))

    @classmethod
    def _make(
        cls, status: int, body: bytes, media_type: str, headers: Mapping[str, str] | None
    ) -> HttpResponse:
        if not headers:
            shared = _CONTENT_TYPES.get(media_type)
            if shared is None:
                return cls(status, Headers((("content-type", media_type),)), body)
            return cls(status, shared, body)
        merged = Headers(headers)
        if "content-type" not in merged:
            merged = merged.with_added("content-type", media_type)
        return cls(status, merged, body)

    def with_header(self, name: str, value: str) -> HttpResponse:
        """A copy with one more header (repeat it for several values).

        Raises:
            InvalidHeaderError: the header cannot be carried (see ``check_header``).
        """
        check_header(name, value)  # the others were checked when self was built
        return HttpResponse(self.status, self.headers.with_added(name, value), self.body)

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        max_age: int | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = True,
        httponly: bool = True,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
    ) -> HttpResponse:
        """A copy with one more ``Set-Cookie`` header.

        Raises:
            InvalidHeaderError: ``name`` is not a valid cookie name, or an attribute
                (``path``, ``domain``) holds a control character.
        """
        from http.cookies import CookieError, SimpleCookie

        jar: SimpleCookie = SimpleCookie()
        try:
            jar[name] = value
        except CookieError:
            raise InvalidHeaderError(f"cookie name {name[:64]!r} is not a token") from None
        morsel = jar[name]
        morsel["path"] = path
        if max_age is not None:
            morsel["max-age"] = max_age
        if domain:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite:
            morsel["samesite"] = samesite.capitalize()
        return self.with_header("set-cookie", morsel.OutputString())

    @property
    def media_type(self) -> str:
        """The media type of the body, lower-case, without parameters ('' if absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def is_text(self) -> bool:
        """True when the body is text, so providers may carry it without base64."""
        if not self.body:
            return True
        media = self.media_type
        if not (media.startswith(_TEXT_TYPES) or media.endswith(_TEXT_SUFFIXES)):
            return False
        try:
            self.body.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def as_text(self) -> str | None:
        """The body as text when it can travel as text (``is_text``), else ``None``.

        One decode: cheaper than checking ``is_text`` and then decoding.
        """
        body = self.body
        if not body:
            return ""
        media = self.media_type
        if not (media.startswith(_TEXT_TYPES) or media.endswith(_TEXT_SUFFIXES)):
            return None
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return None


# Status -> reason phrase ("Not Found"), read from http.HTTPStatus on first use.
_PHRASES: dict[int, str] = {}


def _load_phrases() -> dict[int, str]:
    from http import HTTPStatus

    _PHRASES.update((s.value, s.phrase) for s in HTTPStatus)
    return _PHRASES


_PROBLEM = Headers((("content-type", "application/problem+json"),))
# The shared header maps built above, which responses need not check again.
_BUILT_HERE = frozenset(map(id, (_NO_HEADERS, _PROBLEM, *_CONTENT_TYPES.values())))
