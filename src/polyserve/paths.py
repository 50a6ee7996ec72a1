"""Path templates and the table that matches request paths to routes.

A template is a path whose segments may hold parameters: ``/pets/{pet_id}``
matches one segment as a string, ``{pet_id:int}`` converts it, ``v{n:int}.json``
mixes text and parameters in one segment, and a final ``{rest:path}`` matches the
remaining segments (possibly none). Converters: ``str`` (default, non-empty),
``int``, ``float``, ``uuid``, ``path``.

``RouteTable`` finds the route for a path in time that depends on the path's
length, not on the number of routes: templates are stored in a tree of segments,
literal segments looked up by dictionary. Precedence: a route whose template has
no parameters and equals the path wins; otherwise the route registered first
among those that match.
"""

from __future__ import annotations

from polyserve._value import Value
from polyserve.errors import ConfigurationError, MalformedEventError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable
    from typing import Any

    from polyserve.routing import Route

__all__ = ["RouteTable", "Template", "decode_path", "normalize_path"]


def _to_str(value: str) -> str:
    if not value:
        raise ValueError("empty segment")
    return value


def _to_int(value: str) -> int:
    if value.isascii() and value.isdigit():  # the common case, in two C calls
        return int(value)
    digits = value[1:] if value[:1] == "-" else value
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _to_float(value: str) -> float:
    whole, dot, fraction = (value[1:] if value[:1] == "-" else value).partition(".")
    if not (whole.isascii() and whole.isdigit()) or (
        dot and not (fraction.isascii() and fraction.isdigit())
    ):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


_HEX = frozenset("0123456789abcdefABCDEF")


def _to_uuid(value: str) -> Any:
    digits = value.replace("-", "")
    if len(digits) != 32 or not _HEX.issuperset(digits):
        raise ValueError(f"{value!r} is not a UUID")
    import uuid  # only apps with uuid routes pay for it

    return uuid.UUID(digits)


# name -> (converter, the regex used only inside mixed segments such as "v{n:int}.json")
_CONVERTERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "str": (_to_str, r"[^/]+"),
    "int": (_to_int, r"-?[0-9]+"),
    "float": (_to_float, r"-?[0-9]+(?:\.[0-9]+)?"),
    "uuid": (_to_uuid, r"[0-9a-fA-F-]{32,36}"),
    "path": (str, r".*"),
}


class _Slot(Value):
    """A template segment that is not plain text: one parameter, or text mixed with some."""

    __slots__ = ("converters", "names", "regex")
    _fields = ("names", "converters", "regex")

    names: tuple[str, ...]
    converters: tuple[Callable[[str], Any], ...]
    regex: re.Pattern[str] | None  # mixed segments only

    def __init__(
        self,
        names: tuple[str, ...],
        converters: tuple[Callable[[str], Any], ...],
        regex: re.Pattern[str] | None = None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "names", names)
        set_field(self, "converters", converters)
        set_field(self, "regex", regex)

    def bind(self, part: str) -> dict[str, Any] | None:
        """The parameters ``part`` gives, converted, or ``None`` when it does not match."""
        try:
            if self.regex is None:
                return {self.names[0]: self.converters[0](part)}
            m = self.regex.fullmatch(part)
            if m is None:
                return None
            return {
                name: convert(value)
                for name, convert, value in zip(
                    self.names, self.converters, m.groups(), strict=True
                )
            }
        except ValueError:
            return None


class Template(Value):
    """A parsed path template: its segments (text or ``_Slot``), parameter names and tail.

    Raises (from ``parse``):
        ConfigurationError: a malformed or duplicate parameter, an unknown converter,
            or a ``path`` parameter that does not end the template.
    """

    __slots__ = ("param_names", "path", "segments", "tail")
    _fields = ("path",)

    path: str
    segments: tuple[str | _Slot, ...]
    param_names: tuple[str, ...]
    tail: str | None  # the name of a {name:path} ending

    def __init__(
        self,
        path: str,
        segments: tuple[str | _Slot, ...],
        param_names: tuple[str, ...],
        tail: str | None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "path", path)
        set_field(self, "segments", segments)
        set_field(self, "param_names", param_names)
        set_field(self, "tail", tail)

    @classmethod
    def parse(cls, path: str) -> Template:
        """The template for ``path`` (which starts with ``/``; one trailing slash is dropped)."""
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        if "{" not in path and "}" not in path:
            return cls(path, tuple(path.split("/")), (), None)
        names: list[str] = []
        segments: list[str | _Slot] = []
        tail: str | None = None
        parts = path.split("/")
        for index, part in enumerate(parts):
            slot = _parse_segment(part, path, names)
            if isinstance(slot, _Slot) and slot.regex is None and _is_path(part):
                if index != len(parts) - 1:
                    raise ConfigurationError(f"a path parameter must end the route: {path!r}")
                tail = slot.names[0]
                continue
            segments.append(slot)
        return cls(path, tuple(segments), tuple(names), tail)

    def match(self, path: str) -> dict[str, Any] | None:
        """The converted parameters if the normalised ``path`` matches, else ``None``."""
        if not self.param_names:
            return {} if path == self.path else None
        parts = path.split("/")
        count = len(self.segments)
        if len(parts) < count or (self.tail is None and len(parts) != count):
            return None
        params: dict[str, Any] = {}
        for segment, part in zip(self.segments, parts, strict=False):
            if isinstance(segment, str):
                if segment != part:
                    return None
            else:
                bound = segment.bind(part)
                if bound is None:
                    return None
                params.update(bound)
        if self.tail is not None:
            params[self.tail] = "/".join(parts[count:])
        return params


def _is_path(part: str) -> bool:
    return part.endswith(":path}") and part.startswith("{") and part.count("{") == 1


def _is_name(name: str) -> bool:
    # [A-Za-z_][A-Za-z0-9_]*
    return name.isascii() and name.isidentifier()


def _parse_segment(part: str, path: str, names: list[str]) -> str | _Slot:
    """Plain text, or a ``_Slot`` for a segment holding ``{name}`` or ``{name:converter}``.

    ``re`` is imported only for segments that mix text and parameters (``v{n:int}.json``).
    """
    if "{" not in part and "}" not in part:
        return part
    pieces: list[str | tuple[str, str]] = []  # literal text, or (name, converter)
    pos = 0
    while pos < len(part):
        start = part.find("{", pos)
        literal = part[pos:] if start < 0 else part[pos:start]
        if "}" in literal:
            raise ConfigurationError(f"malformed parameter in route {path!r}")
        if literal:
            pieces.append(literal)
        if start < 0:
            break
        end = part.find("}", start)
        inner = part[start + 1 : end]
        name, colon, kind = inner.partition(":")
        if end < 0 or "{" in inner or not _is_name(name) or (colon and not kind.isalpha()):
            raise ConfigurationError(f"malformed parameter in route {path!r}")
        kind = kind or "str"
        if kind not in _CONVERTERS:
            raise ConfigurationError(f"unknown converter {kind!r} in route {path!r}")
        if name in names:
            raise ConfigurationError(f"duplicate parameter {name!r} in {path!r}")
        names.append(name)
        pieces.append((name, kind))
        pos = end + 1
    params = [piece for piece in pieces if isinstance(piece, tuple)]
    slot_names = tuple(name for name, _ in params)
    converters = tuple(_CONVERTERS[kind][0] for _, kind in params)
    if len(pieces) == 1:
        return _Slot(slot_names, converters)
    import re  # only mixed segments need a regular expression

    pattern = "".join(
        re.escape(piece) if isinstance(piece, str) else f"({_CONVERTERS[piece[1]][1]})"
        for piece in pieces
    )
    return _Slot(slot_names, converters, re.compile(pattern))


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def decode_path(raw: str | bytes) -> str:
    """A request path as the client encoded it, percent-decoded by polyserve's one rule.

    Every escape must be ``%`` and two hex digits, and the decoded bytes must be
    UTF-8. An encoded slash (``%2F``) is refused rather than decoded: decoded, it
    would split a segment (``/pets%2F1`` would reach ``/pets/{id}``), and kept
    encoded, ``HttpRequest.path`` would no longer be one decoded string. Tomcat,
    Apache httpd and Spring Security refuse it by default for the same reason. A
    ``str`` is taken as text (its non-ASCII characters as their UTF-8 bytes),
    ``bytes`` as the bytes of the request line (an ASGI ``raw_path``).

    Adapters call this for platforms that hand over the path as it was sent; where
    the platform decodes it first, its own decoding stands (see the provider pages).
    ``.``/``..`` segments and NUL are left to ``normalize_path``, which runs on every
    request.

    Raises:
        MalformedEventError: code ``invalid_path`` for a malformed escape, an encoded
            slash, or a path that is not UTF-8 once decoded.
    """
    if isinstance(raw, str):
        if "%" not in raw:
            return raw
        try:
            data = raw.encode()
        except UnicodeEncodeError:  # a lone surrogate, from a JSON or JavaScript string
            raise MalformedEventError(
                "request path is not valid text", code="invalid_path"
            ) from None
    else:
        data = raw
    if b"%" in data:
        for escape in data.split(b"%")[1:]:
            digits = escape[:2]
            if len(digits) < 2 or not _HEX_DIGITS.issuperset(digits):
                raise MalformedEventError(
                    "request path has a malformed percent-escape", code="invalid_path"
                )
            if digits in (b"2f", b"2F"):
                raise MalformedEventError(
                    "request path has an encoded slash (%2F)", code="invalid_path"
                )
        from urllib.parse import unquote_to_bytes  # only paths with escapes need it

        data = unquote_to_bytes(data)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise MalformedEventError(
            "request path is not UTF-8 once percent-decoded", code="invalid_path"
        ) from None


def normalize_path(path: str) -> str:
    """The path routes are matched against: one trailing slash dropped.

    Raises:
        MalformedEventError: code ``invalid_path`` for a relative path, a NUL byte or
            a ``.``/``..`` segment, so that encoded tricks never reach a route.
    """
    if not path.startswith("/") or "\x00" in path:
        raise MalformedEventError(f"invalid request path {path!r}", code="invalid_path")
    if "/." in path:  # only then can a segment be "." or ".."
        for segment in path.split("/"):
            if segment in (".", ".."):
                raise MalformedEventError(
                    "dot segments are not allowed in paths", code="invalid_path"
                )
    return path[:-1] if len(path) > 1 and path[-1] == "/" else path


class _Node:
    # One segment position of the tree: literal children by text, parameter children
    # in the order they were added, and the entries whose templates end here.
    __slots__ = ("ends", "literals", "slots", "tails")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.slots: list[tuple[_Slot, _Node]] = []
        self.ends: list[tuple[int, Any]] = []
        self.tails: list[tuple[int, Any, str]] = []


class RouteTable:
    """Routes keyed by their path template, found by path.

    ``find`` returns every route whose template matches a path, each with its
    parameters, in precedence order: templates without parameters first, then in
    the order routes were added.
    """

    def __init__(self) -> None:
        self._static: dict[str, list[tuple[int, Route]]] = {}
        self._root = _Node()
        self._count = 0

    def add(self, route: Route) -> None:
        """Add ``route`` under its template."""
        template, entry = route.template, route
        index = self._count
        self._count += 1
        if not template.param_names:
            self._static.setdefault(template.path, []).append((index, entry))
            return
        node = self._root
        for segment in template.segments:
            if isinstance(segment, str):
                node = node.literals.setdefault(segment, _Node())
                continue
            for slot, child in node.slots:
                if slot == segment:
                    node = child
                    break
            else:
                child = _Node()
                node.slots.append((segment, child))
                node = child
        if template.tail is not None:
            node.tails.append((index, entry, template.tail))
        else:
            node.ends.append((index, entry))

    def find(self, path: str) -> list[tuple[Route, dict[str, Any]]]:
        """Every route whose template matches the normalised ``path``, in precedence order."""
        found: list[tuple[int, Route, tuple[dict[str, Any], ...]]] = []
        parts = path.split("/")
        # Every template and path starts with "/": the first segment is always "".
        first = self._root.literals.get("")
        if first is not None and parts[0] == "":
            _walk(first, parts, 1, (), found)
        if len(found) > 1:
            found.sort(key=_first)
        matches: list[tuple[Route, dict[str, Any]]] = []
        for _, entry, bound in found:
            matches.append((entry, _merged(bound)))
        static = self._static.get(path)
        if static is not None:
            return [(entry, {}) for _, entry in static] + matches
        return matches


def _first(item: tuple[int, Any, Any]) -> int:
    return item[0]


def _merged(bound: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    if len(bound) == 1:
        return bound[0]
    merged: dict[str, Any] = {}
    for params in bound:
        merged.update(params)
    return merged


def _walk(
    node: _Node,
    parts: list[str],
    at: int,
    bound: tuple[dict[str, Any], ...],
    found: list[tuple[int, Route, tuple[dict[str, Any], ...]]],
) -> None:
    # Depth first through the segments that match: a literal child by lookup, then
    # each parameter child whose converter takes the segment. ``bound`` holds the
    # parameters of the segments matched so far, merged only for a route that matches.
    for index, entry, name in node.tails:
        found.append((index, entry, (*bound, {name: "/".join(parts[at:])})))
    if at == len(parts):
        for index, entry in node.ends:
            found.append((index, entry, bound))
        return
    part = parts[at]
    child = node.literals.get(part)
    if child is not None:
        _walk(child, parts, at + 1, bound, found)
    for slot, child in node.slots:
        params = slot.bind(part)
        if params is not None:
            _walk(child, parts, at + 1, (*bound, params), found)
