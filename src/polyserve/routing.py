"""Routes and registrations: which handler answers which request or event.

HTTP paths are templates: ``/pets/{pet_id}`` matches one segment as a string,
``{pet_id:int}`` converts it, and ``{rest:path}`` matches the remaining segments.
Converters: ``str`` (default), ``int``, ``float``, ``uuid``, ``path``.

Non-HTTP handlers are registered by trigger and logical name (a queue name, a
bucket, a schedule name, a table, a CloudEvent type).
"""

from __future__ import annotations

import enum

from polyserve._value import Value
from polyserve.errors import ConfigurationError, MalformedEventError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "HTTP_METHODS",
    "Registration",
    "Route",
    "RouteMatch",
    "Router",
    "Trigger",
    "decode_path",
    "normalize_path",
]


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Trigger(str, enum.Enum):
    """The kinds of non-HTTP event a handler can be registered for."""

    QUEUE = "queue"
    TOPIC = "topic"
    STORAGE = "storage"
    SCHEDULE = "schedule"
    STREAM = "stream"
    CLOUDEVENT = "cloudevent"


def _to_str(value: str) -> str:
    if not value:
        raise ValueError("empty segment")
    return value


def _to_int(value: str) -> int:
    if value.isdigit() and value.isascii():  # the common case, checked first
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

    def bind(self, part: str, params: dict[str, Any]) -> bool:
        try:
            if self.regex is None:
                params[self.names[0]] = self.converters[0](part)
                return True
            m = self.regex.fullmatch(part)
            if m is None:
                return False
            for name, convert, value in zip(self.names, self.converters, m.groups(), strict=True):
                params[name] = convert(value)
            return True
        except ValueError:
            return False


class Route(Value):
    """One HTTP route: a path template, its methods and the handler.

    Matching works segment by segment (no regular expression per route), so
    registering many routes costs little at cold start. Routes are immutable and
    compare by path, methods, endpoint, status, name and parameter names.
    """

    __slots__ = (
        "_converts",
        "_literals",
        "_mixed",
        "_segments",
        "_tail",
        "endpoint",
        "methods",
        "name",
        "param_names",
        "path",
        "status",
    )
    _fields = ("path", "methods", "endpoint", "status", "name", "param_names")

    path: str
    methods: frozenset[str]
    endpoint: Callable[..., Any]
    status: int
    name: str
    param_names: tuple[str, ...]
    _segments: tuple[str | _Slot, ...]
    _tail: str | None  # the name of a {name:path} ending
    _literals: tuple[tuple[int, str], ...]
    _converts: tuple[tuple[int, str, Callable[[str], Any]], ...]
    _mixed: tuple[tuple[int, _Slot], ...]

    def __init__(
        self,
        path: str,
        methods: frozenset[str],
        endpoint: Callable[..., Any],
        status: int = 200,
        name: str = "",
        param_names: tuple[str, ...] = (),
        _segments: tuple[str | _Slot, ...] = (),
        _tail: str | None = None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "path", path)
        set_field(self, "methods", methods)
        set_field(self, "endpoint", endpoint)
        set_field(self, "status", status)
        set_field(self, "name", name)
        set_field(self, "param_names", param_names)
        set_field(self, "_segments", _segments)
        set_field(self, "_tail", _tail)
        # Matching tables: (index, text) for literal segments, (index, name, converter)
        # for whole-segment parameters, (index, slot) for segments mixing text and
        # parameters. Literals are checked first, so a miss converts nothing.
        literals: list[tuple[int, str]] = []
        converts: list[tuple[int, str, Callable[[str], Any]]] = []
        mixed: list[tuple[int, _Slot]] = []
        for index, segment in enumerate(_segments):
            if isinstance(segment, str):
                literals.append((index, segment))
            elif segment.regex is None:
                converts.append((index, segment.names[0], segment.converters[0]))
            else:
                mixed.append((index, segment))
        set_field(self, "_literals", tuple(literals))
        set_field(self, "_converts", tuple(converts))
        set_field(self, "_mixed", tuple(mixed))

    @classmethod
    def build(
        cls, path: str, methods: Iterable[str], endpoint: Callable[..., Any], status: int, name: str
    ) -> Route:
        if not path.startswith("/"):
            raise ConfigurationError(f"route path must start with '/': {path!r}")
        wanted = frozenset(m.upper() for m in methods)
        unknown = wanted - HTTP_METHODS
        if unknown or not wanted:
            raise ConfigurationError(f"unknown HTTP method(s) {sorted(unknown)} for {path!r}")
        path = _strip_slash(path)
        name = name or getattr(endpoint, "__name__", path)
        if "{" not in path and "}" not in path:
            return cls(path, wanted, endpoint, status, name)
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
        return cls(path, wanted, endpoint, status, name, tuple(names), tuple(segments), tail)

    def match(self, path: str) -> dict[str, Any] | None:
        """The converted path parameters if ``path`` matches, else ``None``."""
        if not self.param_names:
            return {} if path == self.path else None
        return self.match_parts(path.split("/"))

    def match_parts(self, parts: list[str]) -> dict[str, Any] | None:
        """``match`` for a path already split on ``/``."""
        count = len(self._segments)
        if len(parts) != count and (self._tail is None or len(parts) <= count):
            return None
        for index, literal in self._literals:
            if parts[index] != literal:
                return None
        params: dict[str, Any] = {}
        try:
            for index, name, convert in self._converts:
                params[name] = convert(parts[index])
        except ValueError:
            return None
        for index, slot in self._mixed:
            if not slot.bind(parts[index], params):
                return None
        if self._tail is not None:
            params[self._tail] = "/".join(parts[count:])
        return params


def _is_path(part: str) -> bool:
    return part.endswith(":path}") and part.startswith("{") and part.count("{") == 1


def _is_name(name: str) -> bool:
    # [A-Za-z_][A-Za-z0-9_]*
    return name.isascii() and name.isidentifier()


def _parse_segment(part: str, path: str, names: list[str]) -> str | _Slot:
    """Plain text, or a ``_Slot`` for a segment holding ``{name}`` or ``{name:converter}``.

    A segment that is one parameter matches without a regular expression; ``re`` is
    imported only for segments that mix text and parameters (``v{n:int}.json``).
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


class Registration(Value):
    """A non-HTTP handler: its trigger, logical name and options (e.g. ``cron``).

    Immutable; compares by all four fields.
    """

    __slots__ = ("endpoint", "name", "options", "trigger")
    _fields = ("trigger", "name", "endpoint", "options")

    trigger: Trigger
    name: str
    endpoint: Callable[..., Any]
    options: Mapping[str, Any]

    def __init__(
        self,
        trigger: Trigger,
        name: str,
        endpoint: Callable[..., Any],
        options: Mapping[str, Any] | None = None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "trigger", trigger)
        set_field(self, "name", name)
        set_field(self, "endpoint", endpoint)
        set_field(self, "options", {} if options is None else options)


class RouteMatch:
    """The outcome of looking up a path: the route, or the methods the path allows."""

    __slots__ = ("allowed", "params", "route")

    def __init__(
        self, route: Route | None, params: Mapping[str, Any], allowed: frozenset[str]
    ) -> None:
        self.route = route
        self.params = params
        self.allowed = allowed

    def __repr__(self) -> str:
        return f"RouteMatch(route={self.route!r}, params={self.params!r}, allowed={self.allowed!r})"


_NO_METHODS: frozenset[str] = frozenset()


def _strip_slash(path: str) -> str:
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


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


class Router:
    """A group of handlers, included into an ``App`` (optionally under a path prefix)."""

    def __init__(self, prefix: str = "") -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(f"router prefix must start and not end with '/': {prefix!r}")
        self.prefix = prefix
        self._static: dict[str, list[Route]] = {}
        self._dynamic: list[Route] = []
        self._routes: list[Route] = []
        self._registrations: list[Registration] = []

    # -- HTTP -----------------------------------------------------------------

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every HTTP route, in registration order."""
        return tuple(self._routes)

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        methods: Iterable[str] = ("GET",),
        *,
        status: int = 200,
        name: str = "",
    ) -> Route:
        """Register ``endpoint`` for ``methods`` on ``path`` (prefixed by the router's prefix)."""
        route = Route.build(self.prefix + path, methods, endpoint, status, name)
        self._add(route)
        return route

    def _add(self, route: Route) -> None:
        for existing in self._routes:
            if existing.path == route.path and existing.methods & route.methods:
                raise ConfigurationError(
                    f"{sorted(existing.methods & route.methods)} {route.path} is already "
                    f"handled by {existing.name!r}"
                )
        self._routes.append(route)
        if route.param_names:
            self._dynamic.append(route)
        else:
            self._static.setdefault(route.path, []).append(route)

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), *, status: int = 200, name: str = ""
    ) -> Callable[[F], F]:
        """Decorator: register the function for ``methods`` on ``path``."""

        def decorate(fn: F) -> F:
            self.add_route(path, fn, methods, status=status, name=name)
            return fn

        return decorate

    def get(self, path: str, *, status: int = 200, name: str = "") -> Callable[[F], F]:
        """Decorator: register a GET (and HEAD) handler."""
        return self.route(path, ("GET",), status=status, name=name)

    def post(self, path: str, *, status: int = 200, name: str = "") -> Callable[[F], F]:
        """Decorator: register a POST handler."""
        return self.route(path, ("POST",), status=status, name=name)

    def put(self, path: str, *, status: int = 200, name: str = "") -> Callable[[F], F]:
        """Decorator: register a PUT handler."""
        return self.route(path, ("PUT",), status=status, name=name)

    def patch(self, path: str, *, status: int = 200, name: str = "") -> Callable[[F], F]:
        """Decorator: register a PATCH handler."""
        return self.route(path, ("PATCH",), status=status, name=name)

    def delete(self, path: str, *, status: int = 200, name: str = "") -> Callable[[F], F]:
        """Decorator: register a DELETE handler."""
        return self.route(path, ("DELETE",), status=status, name=name)

    def options(self, path: str, *, status: int = 200, name: str = "") -> Callable[[F], F]:
        """Decorator: register an OPTIONS handler (CORS preflight is answered without one)."""
        return self.route(path, ("OPTIONS",), status=status, name=name)

    def head(self, path: str, *, status: int = 200, name: str = "") -> Callable[[F], F]:
        """Decorator: register a HEAD handler (GET handlers answer HEAD without one)."""
        return self.route(path, ("HEAD",), status=status, name=name)

    def lookup(self, method: str, path: str) -> tuple[Route, dict[str, Any]] | None:
        """The route for ``method`` on a normalised ``path`` and its parameters, if one is.

        The fast path of ``match``: ``None`` when no route has this method for this
        path, where ``match`` tells 404 from 405 and answers HEAD with GET.
        """
        static = self._static.get(path)
        if static is not None:
            for route in static:
                if method in route.methods:
                    return route, {}
        if self._dynamic:
            parts = path.split("/")
            count = len(parts)
            for route in self._dynamic:
                if method in route.methods and (
                    len(route._segments) == count or route._tail is not None
                ):
                    params = route.match_parts(parts)
                    if params is not None:
                        return route, params
        return None

    def match(self, method: str, path: str) -> RouteMatch:
        """Find the route for ``method`` and an already normalised ``path``."""
        # Fast path: the route exists for this method (almost every request).
        static = self._static.get(path)
        if static is not None:
            for route in static:
                if method in route.methods:
                    return RouteMatch(route, {}, _NO_METHODS)
        if self._dynamic:
            parts = path.split("/")
            for route in self._dynamic:
                if method in route.methods:
                    params = route.match_parts(parts)
                    if params is not None:
                        return RouteMatch(route, params, _NO_METHODS)
        return self._miss(method, path)

    def _miss(self, method: str, path: str) -> RouteMatch:
        # HEAD answered by GET, or no route for the method: collect what the path allows.
        allowed: set[str] = set()
        fallback: tuple[Route, dict[str, Any]] | None = None
        candidates: Iterable[Route] = self._static.get(path, ())
        for pass_ in (0, 1):
            for route in candidates:
                params = route.match(path) if pass_ else {}
                if params is None:
                    continue
                if method == "HEAD" and "GET" in route.methods and fallback is None:
                    fallback = (route, params)
                allowed |= route.methods
            candidates = self._dynamic
        if fallback is not None:
            return RouteMatch(fallback[0], fallback[1], _NO_METHODS)
        if "GET" in allowed:
            allowed.add("HEAD")
        return RouteMatch(None, {}, frozenset(allowed))

    # -- other triggers -------------------------------------------------------

    @property
    def registrations(self) -> tuple[Registration, ...]:
        """Every non-HTTP registration, in registration order."""
        return tuple(self._registrations)

    def register(
        self, trigger: Trigger, name: str, endpoint: Callable[..., Any], **options: Any
    ) -> Registration:
        """Register ``endpoint`` for events of ``trigger`` from the source called ``name``.

        ``options`` are kept for adapters and deploy files. Two are checked here:
        ``max_attempts`` (an int of at least 1) and ``on_poison`` (a callable taking
        ``(event, exception, context)``, which needs ``max_attempts``). They apply to
        queue, topic and stream messages, whose events count their deliveries.

        Raises:
            ConfigurationError: no name, an invalid option, or an overlapping registration.
        """
        if not name:
            raise ConfigurationError(f"a {trigger.value} registration needs a name")
        _check_poison_options(trigger, name, options)
        for existing in self._registrations:
            if (
                existing.trigger is trigger
                and existing.name == name
                and _overlaps(existing.options, options)
            ):
                raise ConfigurationError(f"{trigger.value} {name!r} is already handled")
        reg = Registration(trigger, name, endpoint, options)
        self._registrations.append(reg)
        return reg

    def _registrar(self, trigger: Trigger, name: str, **options: Any) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.register(trigger, name, fn, **options)
            return fn

        return decorate

    def queue(self, name: str, **options: Any) -> Callable[[F], F]:
        """Decorator: handle messages from the queue called ``name``.

        Adapters read provider settings from ``options`` (for example Azure's
        ``connection`` setting name).
        """
        return self._registrar(Trigger.QUEUE, name, **options)

    def topic(self, name: str, **options: Any) -> Callable[[F], F]:
        """Decorator: handle messages published to the topic called ``name``."""
        return self._registrar(Trigger.TOPIC, name, **options)

    def storage(
        self, bucket: str, *, actions: Iterable[str] = ("created", "deleted"), **options: Any
    ) -> Callable[[F], F]:
        """Decorator: handle object events in ``bucket`` for the given ``actions``."""
        return self._registrar(Trigger.STORAGE, bucket, actions=frozenset(actions), **options)

    def schedule(
        self, name: str, *, cron: str | None = None, rate: str | None = None, **options: Any
    ) -> Callable[[F], F]:
        """Decorator: run on the schedule called ``name``.

        ``cron`` is a five-field cron expression (minute hour day month weekday) in UTC,
        ``rate`` an interval such as ``"5 minutes"``; adapters and deploy files use
        them where the provider declares schedules in code.
        """
        if cron is not None and len(cron.split()) != 5:
            raise ConfigurationError(f"cron must have five fields: {cron!r}")
        return self._registrar(Trigger.SCHEDULE, name, cron=cron, rate=rate, **options)

    def stream(self, name: str, **options: Any) -> Callable[[F], F]:
        """Decorator: handle change records (or stream messages) from the source ``name``."""
        return self._registrar(Trigger.STREAM, name, **options)

    def cloudevent(self, type: str, **options: Any) -> Callable[[F], F]:
        """Decorator: handle CloudEvents of ``type`` (``"*"`` handles every other type)."""
        return self._registrar(Trigger.CLOUDEVENT, type, **options)

    def find(self, trigger: Trigger, name: str, action: str | None = None) -> Registration | None:
        """The registration for ``trigger`` and ``name`` (and a storage ``action``), if any."""
        wildcard: Registration | None = None
        for reg in self._registrations:
            if reg.trigger is not trigger:
                continue
            if action is not None and action not in reg.options.get("actions", (action,)):
                continue
            if reg.name == name:
                return reg
            if reg.name == "*":
                wildcard = reg
        return wildcard

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Add every handler of ``router``; its HTTP paths get ``prefix`` in front."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigurationError(f"prefix must start and not end with '/': {prefix!r}")
        for route in router.routes:
            self.add_route(
                prefix + route.path, route.endpoint, route.methods,
                status=route.status, name=route.name,
            )  # fmt: skip
        for reg in router.registrations:
            self.register(reg.trigger, reg.name, reg.endpoint, **reg.options)


_COUNTED = frozenset({Trigger.QUEUE, Trigger.TOPIC, Trigger.STREAM})


def _check_poison_options(trigger: Trigger, name: str, options: Mapping[str, Any]) -> None:
    max_attempts = options.get("max_attempts")
    on_poison = options.get("on_poison")
    if max_attempts is None and on_poison is None:
        return
    where = f"{trigger.value} {name!r}"
    if trigger not in _COUNTED:
        raise ConfigurationError(
            f"max_attempts/on_poison on {where}: only queue, topic and stream messages "
            "carry a delivery count"
        )
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise ConfigurationError(f"max_attempts of {where} must be an int >= 1: {max_attempts!r}")
    if on_poison is not None:
        if not callable(on_poison):
            raise ConfigurationError(f"on_poison of {where} must be callable: {on_poison!r}")
        if max_attempts is None:
            raise ConfigurationError(f"on_poison of {where} needs max_attempts")


def _overlaps(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    actions_a, actions_b = a.get("actions"), b.get("actions")
    if actions_a is None or actions_b is None:
        return True
    return bool(set(actions_a) & set(actions_b))
