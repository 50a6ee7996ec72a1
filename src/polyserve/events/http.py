"""HTTP requests and responses, the same whichever provider delivered them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from polyserve._frozen import fast_init, maker
from polyserve._json import dumps
from polyserve.errors import InvalidHeaderError
from polyserve.events._body import parse_json

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal, TypeVar, overload

    from typing_extensions import Self

    _T = TypeVar("_T")


__all__ = ["Headers", "HttpRequest", "HttpResponse", "QueryParams", "check_header"]

_Pairs = Iterable[tuple[str, str]]
_MISSING: Any = object()
_new = object.__new__


class _MultiMap(Mapping[str, str]):
    """An immutable, ordered multi-map; ``m[k]`` is the first value, ``get_all`` every one."""

    __slots__ = ("_direct", "_items", "_source", "_textual")
    # None until a ``view`` is first used.
    _items: tuple[tuple[str, str], ...] | None
    # A provider's own map, read into _items on first use (see ``view``).
    _source: tuple[Mapping[str, Any], bool]
    # The same map when its names are normalized already: looked up directly.
    _direct: Mapping[str, Any] | None
    # For headers: whether a body they describe is text (HttpResponse.as_text), once known.
    _textual: bool | None

    def __init__(self, items: _Pairs | Mapping[str, str] | None = None) -> None:
        # Hot path: adapters build several of these per request, so no ABC checks.
        self._direct = self._textual = None
        if items is None:
            self._items = ()
        elif type(items) is type(self):
            self._items = items._pairs()
        else:
            pairs = items.items() if hasattr(items, "items") else items
            norm = self._norm
            self._items = tuple([(norm(k), v) for k, v in pairs])

    _norm: Callable[[str], str] = staticmethod(str)

    @classmethod
    def view(
        cls, mapping: Mapping[str, Any], *, multi: bool = False, normalized: bool = False
    ) -> Self:
        """A map read from a provider's ``{name: value}`` (or, with ``multi``, ``{name: [values]}``).

        Nothing is copied until the map is first used, so a request whose handler
        never looks at its headers does not pay for them. ``mapping`` must not change
        afterwards. A value of ``None`` in a ``multi`` list is an empty value.

        ``normalized`` says the provider's names are already as this map stores them
        (lower-case header names, as HTTP APIs send them): then ``get`` and ``[]``
        look a name up in ``mapping`` directly, and read the whole map only when it
        is not there.

        Raises (on first use, not here):
            MalformedEventError: a value is not a string (or, with ``multi``, not a list
                of strings), so a client's malformed event still gets a 400.
        """
        new = _new(cls)
        new._items = new._textual = None
        new._source = (mapping, multi)
        new._direct = mapping if normalized and not multi else None
        return new

    def _pairs(self) -> tuple[tuple[str, str], ...]:
        items = self._items
        return items if items is not None else self._load()

    def _load(self) -> tuple[tuple[str, str], ...]:
        # The _items of a ``view``, read from the provider's map on first use.
        mapping, multi = self._source
        norm = self._norm
        if not multi:
            try:
                "".join(mapping.values())  # every value a str, checked at C speed
                pairs = self._items = tuple([(norm(k), v) for k, v in mapping.items()])
                return pairs
            except TypeError:
                pass  # the loop below says which value is wrong
        items: list[tuple[str, str]] = []
        for key, value in mapping.items():
            values: tuple[Any, ...]
            if not multi:
                values = (value,)
            elif value.__class__ is list:
                values = tuple("" if v is None else v for v in value)
            else:
                values = (None,)  # not a list: rejected just below
            for item in values:
                if item.__class__ is not str or key.__class__ is not str:
                    from polyserve.errors import MalformedEventError

                    kind = type(self).__name__
                    raise MalformedEventError(f"{kind} value of {key!r} must be a string")
                items.append((norm(key), item))
        loaded = self._items = tuple(items)
        return loaded

    def __getitem__(self, key: str) -> str:
        value = self._first(key, _MISSING)
        if value is _MISSING:
            raise KeyError(self._norm(key))
        return value  # type: ignore[no-any-return]  # a value of the map

    def _first(self, key: str, default: Any = None) -> Any:
        key = self._norm(key)
        items = self._items
        if items is None:
            direct = self._direct
            if direct is not None:
                value = direct.get(key)
                if value.__class__ is str:
                    return value
            items = self._load()
        for k, v in items:
            if k == key:
                return v
        return default

    if TYPE_CHECKING:

        @overload
        def get(self, key: str, /) -> str | None: ...
        @overload
        def get(self, key: str, /, default: str | _T) -> str | _T: ...
        def get(self, key: str, /, default: object = None) -> object:
            """The first value of ``key``, or ``default``."""
            return self._first(key, default)

    else:
        # Mapping.get goes through __getitem__ and KeyError; a direct loop is faster.
        get = _first

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for k, _ in self._pairs():
            seen.setdefault(k, None)
        return iter(seen)

    def __len__(self) -> int:
        return len({k for k, _ in self._pairs()})

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        key = self._norm(key)
        return any(k == key for k, _ in self._pairs())

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key``, in arrival order (empty if absent)."""
        key = self._norm(key)
        return [v for k, v in self._pairs() if k == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, in arrival order, repeats included."""
        items = self._items
        return list(items if items is not None else self._load())

    def to_multi_dict(self) -> dict[str, list[str]]:
        """A ``{name: [values]}`` dict, as multi-value providers want it."""
        out: dict[str, list[str]] = {}
        for k, v in self._pairs():
            out.setdefault(k, []).append(v)
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _MultiMap):
            return type(self) is type(other) and self.to_multi_dict() == other.to_multi_dict()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._pairs())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._pairs())!r})"


class Headers(_MultiMap):
    """Case-insensitive, multi-valued HTTP headers. Names are stored lower-case.

    Equality ignores the order of different names but keeps the order of the
    values of one name (``Set-Cookie`` order matters, ``Accept`` vs ``Host`` does not).
    """

    __slots__ = ()

    _norm = staticmethod(str.lower)

    def with_added(self, name: str, value: str) -> Headers:
        """A copy with one more ``name: value`` pair."""
        return Headers((*self._pairs(), (name, value)))

    def with_set(self, name: str, value: str) -> Headers:
        """A copy where ``name`` has exactly the one ``value``."""
        key = name.lower()
        return Headers((*((k, v) for k, v in self._pairs() if k != key), (key, value)))


class QueryParams(_MultiMap):
    """Case-sensitive, multi-valued query parameters, already percent-decoded."""

    __slots__ = ()

    @classmethod
    def from_string(cls, query: str) -> QueryParams:
        """Parse a raw query string (``a=1&a=2&b``); bad escapes never raise."""
        if not query:
            return cls()
        parse = _parse_qsl or _load_parse_qsl()
        return cls(parse(query, keep_blank_values=True, errors="replace"))

    def to_string(self) -> str:
        """The parameters encoded as a query string (without ``?``)."""
        from urllib.parse import quote, urlencode

        return urlencode(self._pairs(), quote_via=quote)


_parse_qsl: Callable[..., list[tuple[str, str]]] | None = None


def _load_parse_qsl() -> Callable[..., list[tuple[str, str]]]:
    # urllib.parse costs a cold start milliseconds: imported with the first query string.
    global _parse_qsl
    from urllib.parse import parse_qsl

    _parse_qsl = parse_qsl
    return parse_qsl


# Shared empty instances: both types are immutable, and requests default to them.
_NO_QUERY = QueryParams()
_NO_HEADERS = Headers()


@fast_init
@dataclass(frozen=True, slots=True)
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
@dataclass(frozen=True, slots=True)
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

    def __post_init__(self) -> None:
        for name, value in self.headers._pairs():
            # The usual header passes these C calls; check_header has the last word
            # on any other (a "_" in a name, a tab in a value, or no string at all).
            try:
                if name.isascii() and name.replace("-", "").isalnum() and value.isprintable():
                    continue
            except AttributeError:
                pass
            check_header(name, value)

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
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> HttpResponse:
        """A response with no body."""
        if not headers:
            return _response(status, _NO_HEADERS, b"")
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
            return _response(status, _PROBLEM, dumps(body))
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
            return _response(status, shared, body)  # checked already: built here
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
        return _response(self.status, self.headers.with_added(name, value), self.body)

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
        headers = self.headers
        textual = headers._textual  # worked out once per Headers: responses share them
        if textual is None:
            content_type = headers.get("content-type", "")
            media = content_type.split(";", 1)[0].strip().lower()
            textual = media.startswith(_TEXT_TYPES) or media.endswith(_TEXT_SUFFIXES)
            headers._textual = textual
        if not textual:
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
# HttpResponse from all its fields, unchecked: for headers known to be valid.
_response = maker(HttpResponse)
