"""Routes and registrations: which handler answers which request or event.

HTTP handlers are routes: a path template (see ``polyserve.paths``), methods and
a handler. Non-HTTP handlers are registrations, by trigger and logical name (a
queue name, a bucket, a schedule name, a table, a CloudEvent type).

A ``Router`` groups both, with the middleware, dependencies and exception
handlers that apply to them; ``App.include_router`` adds a router's handlers to
an app, its extensions attached to each handler.
"""

from __future__ import annotations

import enum

from polyserve._value import Value
from polyserve.errors import ConfigurationError
from polyserve.paths import RouteTable, Template, normalize_path
from polyserve.pipeline import Middleware, as_middleware, check_exception_class

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, TypeVar, overload

    from polyserve.params import Dependency
    from polyserve.pipeline import ExceptionHandler

    F = TypeVar("F", bound=Callable[..., Any])
    H = TypeVar("H", bound=Callable[..., Any])
    MiddlewareLike = Middleware | Callable[..., Any]

__all__ = [
    "HTTP_METHODS",
    "Registration",
    "Route",
    "RouteMatch",
    "Router",
    "Trigger",
    "normalize_path",
]


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""The methods a route may be registered for."""


class Trigger(str, enum.Enum):
    """The kinds of non-HTTP event a handler can be registered for."""

    QUEUE = "queue"
    TOPIC = "topic"
    STORAGE = "storage"
    SCHEDULE = "schedule"
    STREAM = "stream"
    CLOUDEVENT = "cloudevent"
    WEBSOCKET = "websocket"
    NATIVE = "native"


_NO_HANDLERS: Mapping[type[BaseException], ExceptionHandler] = {}


class Route(Value):
    """One HTTP route: a path template, its methods, the handler and its extensions.

    Immutable; routes compare by every field.
    """

    __slots__ = (
        "dependencies",
        "endpoint",
        "exception_handlers",
        "methods",
        "middleware",
        "name",
        "path",
        "status",
        "template",
    )
    _fields = (
        "path",
        "methods",
        "endpoint",
        "status",
        "name",
        "middleware",
        "dependencies",
        "exception_handlers",
    )

    path: str
    methods: frozenset[str]
    endpoint: Callable[..., Any]
    status: int
    name: str
    middleware: tuple[Middleware, ...]
    dependencies: tuple[Dependency, ...]
    exception_handlers: Mapping[type[BaseException], ExceptionHandler]
    template: Template

    def __init__(
        self,
        path: str,
        methods: Iterable[str],
        endpoint: Callable[..., Any],
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
        exception_handlers: Mapping[type[BaseException], ExceptionHandler] | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise ConfigurationError(f"route path must start with '/': {path!r}")
        wanted = frozenset(m.upper() for m in methods)
        unknown = wanted - HTTP_METHODS
        if unknown or not wanted:
            raise ConfigurationError(f"unknown HTTP method(s) {sorted(unknown)} for {path!r}")
        template = Template.parse(path)
        set_field = object.__setattr__
        set_field(self, "path", template.path)
        set_field(self, "methods", wanted)
        set_field(self, "endpoint", endpoint)
        set_field(self, "status", status)
        set_field(self, "name", name or getattr(endpoint, "__name__", template.path))
        set_field(self, "middleware", as_middleware(middleware))
        set_field(self, "dependencies", _dependencies(dependencies))
        set_field(self, "exception_handlers", dict(exception_handlers or _NO_HANDLERS))
        set_field(self, "template", template)

    def __hash__(self) -> int:
        return hash((self.path, self.methods, self.endpoint, self.status, self.name))

    @property
    def param_names(self) -> tuple[str, ...]:
        """The names of the path parameters, in template order."""
        return self.template.param_names

    def match(self, path: str) -> dict[str, Any] | None:
        """The converted path parameters if the normalised ``path`` matches, else ``None``."""
        return self.template.match(path)

    def extended(
        self,
        prefix: str,
        middleware: tuple[Middleware, ...],
        dependencies: tuple[Dependency, ...],
        exception_handlers: Mapping[type[BaseException], ExceptionHandler],
    ) -> Route:
        """This route under ``prefix``, with a router's extensions around its own."""
        return Route(
            prefix + self.path,
            self.methods,
            self.endpoint,
            status=self.status,
            name=self.name,
            middleware=middleware + self.middleware,
            dependencies=dependencies + self.dependencies,
            exception_handlers={**exception_handlers, **self.exception_handlers},
        )


class Registration(Value):
    """A non-HTTP handler: its trigger, logical name, options (e.g. ``cron``) and extensions.

    Immutable; registrations compare by every field.
    """

    __slots__ = (
        "dependencies",
        "endpoint",
        "exception_handlers",
        "middleware",
        "name",
        "options",
        "trigger",
    )
    _fields = (
        "trigger",
        "name",
        "endpoint",
        "options",
        "middleware",
        "dependencies",
        "exception_handlers",
    )

    trigger: Trigger
    name: str
    endpoint: Callable[..., Any]
    options: Mapping[str, Any]
    middleware: tuple[Middleware, ...]
    dependencies: tuple[Dependency, ...]
    exception_handlers: Mapping[type[BaseException], ExceptionHandler]

    def __init__(
        self,
        trigger: Trigger,
        name: str,
        endpoint: Callable[..., Any],
        options: Mapping[str, Any] | None = None,
        *,
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
        exception_handlers: Mapping[type[BaseException], ExceptionHandler] | None = None,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "trigger", trigger)
        set_field(self, "name", name)
        set_field(self, "endpoint", endpoint)
        set_field(self, "options", {} if options is None else options)
        set_field(self, "middleware", as_middleware(middleware))
        set_field(self, "dependencies", _dependencies(dependencies))
        set_field(self, "exception_handlers", dict(exception_handlers or _NO_HANDLERS))

    def __hash__(self) -> int:
        return hash((self.trigger, self.name, self.endpoint))


class RouteMatch:
    """The outcome of looking up a path: the route, or the methods the path allows."""

    __slots__ = ("allowed", "params", "route")

    def __init__(
        self, route: Route | None, params: dict[str, Any], allowed: frozenset[str]
    ) -> None:
        self.route = route
        self.params = params
        self.allowed = allowed

    def __repr__(self) -> str:
        return f"RouteMatch(route={self.route!r}, params={self.params!r}, allowed={self.allowed!r})"


_NO_METHODS: frozenset[str] = frozenset()


def _dependencies(items: Iterable[Dependency]) -> tuple[Dependency, ...]:
    deps = tuple(items)
    if not deps:
        return deps  # the usual case, which needs nothing imported to check
    from polyserve.params import Dependency

    for dep in deps:
        if not isinstance(dep, Dependency) or dep.provider is None:
            raise ConfigurationError(f"dependencies takes Depends(provider) items, got {dep!r}")
    return deps


class Router:
    """A group of handlers, with the middleware, dependencies and exception handlers around them.

    Args:
        prefix: put before every route path (``"/v1"``).
        middleware: run around each of the router's handlers, first outermost, inside
            the app's own middleware.
        dependencies: resolved before each of the router's handlers runs, for their
            effect (an authorization check, say); their values are not passed on.

    Raises:
        ConfigurationError: a prefix that does not start, or that ends, with ``/``.
    """

    def __init__(
        self,
        prefix: str = "",
        *,
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> None:
        _check_prefix(prefix)
        self.prefix = prefix
        self._middleware: list[Middleware] = list(as_middleware(middleware))
        self._dependencies: list[Dependency] = list(_dependencies(dependencies))
        self._exception_handlers: dict[type[BaseException], ExceptionHandler] = {}
        self._table = RouteTable()
        self._routes: list[Route] = []
        self._registrations: list[Registration] = []

    # -- extensions -----------------------------------------------------------

    if TYPE_CHECKING:

        @overload
        def middleware(self, fn: Middleware, /) -> Middleware: ...
        @overload
        def middleware(self, fn: F, /, *, http: bool = True, events: bool = True) -> F: ...
        @overload
        def middleware(
            self, fn: None = None, /, *, http: bool = True, events: bool = True
        ) -> Callable[[F], F]: ...

    def middleware(
        self,
        fn: Middleware | Callable[..., Any] | None = None,
        /,
        *,
        http: bool = True,
        events: bool = True,
    ) -> Any:
        """Add a middleware, as a decorator (``@router.middleware``) or a call.

        ``fn(call, event, ctx)`` runs around every handler it applies to (see
        ``polyserve.pipeline.Middleware``); ``http=False`` or ``events=False`` limits
        it to events or to HTTP. A ``Middleware`` is added as it is. Middleware run
        in the order they are added, the first outermost.
        """

        def add(fn: Any) -> Any:
            mw = fn if isinstance(fn, Middleware) else Middleware(fn, http=http, events=events)
            self._middleware.append(mw)
            self._changed()
            return fn

        return add if fn is None else add(fn)

    def _changed(self) -> None:
        """Called when middleware or exception handlers change (apps drop their plans)."""

    def exception_handler(self, exc_class: type[Exception]) -> Callable[[H], H]:
        """Decorator: handle ``exc_class`` (and its subclasses) raised in this router's handlers.

        ``handler(exc, event, ctx)`` gets the exception, the request or event, and the
        context. For HTTP its return value is rendered as the response; for other
        triggers it is the handler's result, ``SetAside(...)`` acknowledges the event
        unhandled, and raising (``Retry`` included) fails it. The most specific class
        wins. What no handler takes keeps its default: problem+json for HTTP (4xx
        errors show their code, anything else a generic 500), and for events the
        exception itself, so the platform redelivers.

        Raises:
            ConfigurationError: ``exc_class`` is not an ``Exception`` subclass.
        """
        check_exception_class(exc_class)

        def add(handler: H) -> H:
            self._exception_handlers[exc_class] = handler
            self._changed()
            return handler

        return add

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
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Route:
        """Register ``endpoint`` for ``methods`` on ``path`` (after the router's prefix).

        Raises:
            ConfigurationError: a malformed path or method, or a method already handled
                on this path.
        """
        route = Route(
            self.prefix + path,
            methods,
            endpoint,
            status=status,
            name=name,
            middleware=middleware,
            dependencies=dependencies,
        )
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
        self._table.add(route)

    def route(
        self,
        path: str,
        methods: Iterable[str] = ("GET",),
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register the function for ``methods`` on ``path``."""

        def decorate(fn: F) -> F:
            self.add_route(
                path, fn, methods, status=status, name=name, middleware=middleware,
                dependencies=dependencies,
            )  # fmt: skip
            return fn

        return decorate

    def get(
        self,
        path: str,
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register a GET (and HEAD) handler; options as for ``route``."""
        return self.route(
            path, ("GET",), status=status, name=name, middleware=middleware,
            dependencies=dependencies,
        )  # fmt: skip

    def post(
        self,
        path: str,
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register a POST handler; options as for ``route``."""
        return self.route(
            path, ("POST",), status=status, name=name, middleware=middleware,
            dependencies=dependencies,
        )  # fmt: skip

    def put(
        self,
        path: str,
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register a PUT handler; options as for ``route``."""
        return self.route(
            path, ("PUT",), status=status, name=name, middleware=middleware,
            dependencies=dependencies,
        )  # fmt: skip

    def patch(
        self,
        path: str,
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register a PATCH handler; options as for ``route``."""
        return self.route(
            path, ("PATCH",), status=status, name=name, middleware=middleware,
            dependencies=dependencies,
        )  # fmt: skip

    def delete(
        self,
        path: str,
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register a DELETE handler; options as for ``route``."""
        return self.route(
            path, ("DELETE",), status=status, name=name, middleware=middleware,
            dependencies=dependencies,
        )  # fmt: skip

    def options(
        self,
        path: str,
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register an OPTIONS handler (CORS preflight is answered without one); options as for ``route``."""
        return self.route(
            path, ("OPTIONS",), status=status, name=name, middleware=middleware,
            dependencies=dependencies,
        )  # fmt: skip

    def head(
        self,
        path: str,
        *,
        status: int = 200,
        name: str = "",
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
    ) -> Callable[[F], F]:
        """Decorator: register a HEAD handler (GET handlers answer HEAD without one); options as for ``route``."""
        return self.route(
            path, ("HEAD",), status=status, name=name, middleware=middleware,
            dependencies=dependencies,
        )  # fmt: skip

    def match(self, method: str, path: str) -> RouteMatch:
        """The route for ``method`` on an already normalised ``path``, or what the path allows.

        A route without parameters that equals the path wins; then the first route
        registered among those that match. ``HEAD`` is answered by a ``GET`` route
        when no route takes ``HEAD`` itself.
        """
        found = self._table.find(path)
        for route, params in found:
            if method in route.methods:
                return RouteMatch(route, params, _NO_METHODS)
        allowed: set[str] = set()
        for route, params in found:
            if method == "HEAD" and "GET" in route.methods:
                return RouteMatch(route, params, _NO_METHODS)
            allowed |= route.methods
        if "GET" in allowed:
            allowed.add("HEAD")
        return RouteMatch(None, {}, frozenset(allowed))

    # -- other triggers -------------------------------------------------------

    @property
    def registrations(self) -> tuple[Registration, ...]:
        """Every non-HTTP registration, in registration order."""
        return tuple(self._registrations)

    def register(
        self,
        trigger: Trigger,
        name: str,
        endpoint: Callable[..., Any],
        *,
        middleware: Iterable[MiddlewareLike] = (),
        dependencies: Iterable[Dependency] = (),
        **options: Any,
    ) -> Registration:
        """Register ``endpoint`` for events of ``trigger`` from the source called ``name``.

        ``options`` are kept for adapters and deploy files. Two are checked here:
        ``max_attempts`` (an int of at least 1) and ``on_poison`` (a callable taking
        ``(event, exception, context)``, which needs ``max_attempts``). They apply to
        queue, topic and stream messages, whose events count their deliveries.

        Raises:
            ConfigurationError: no name, an invalid option, or an overlapping registration.
        """
        reg = Registration(
            trigger, name, endpoint, options, middleware=middleware, dependencies=dependencies
        )
        self._add_registration(reg)
        return reg

    def _add_registration(self, reg: Registration) -> None:
        trigger, name, options = reg.trigger, reg.name, reg.options
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
        self._registrations.append(reg)

    def _registrar(self, trigger: Trigger, name: str, **options: Any) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.register(trigger, name, fn, **options)
            return fn

        return decorate

    def queue(self, name: str, **options: Any) -> Callable[[F], F]:
        """Decorator: handle messages from the queue called ``name``.

        Options: ``max_attempts``, ``on_poison``, ``middleware``, ``dependencies``, and
        provider settings that adapters read (for example Azure's ``connection``).
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

        Raises:
            ConfigurationError: ``cron`` does not have five fields.
        """
        if cron is not None and len(cron.split()) != 5:
            raise ConfigurationError(f"cron must have five fields: {cron!r}")
        return self._registrar(Trigger.SCHEDULE, name, cron=cron, rate=rate, **options)

    def stream(self, name: str, *, window: bool = False, **options: Any) -> Callable[[F], F]:
        """Decorator: handle change records (or stream messages) from the source ``name``.

        With ``window=True`` the handler takes tumbling windows instead of records: one
        ``StreamWindow`` per delivery, returning the window's new state (see
        ``polyserve.events.window``; Lambda's Kinesis and DynamoDB Streams windows).
        """
        if window:
            options["window"] = True
        return self._registrar(Trigger.STREAM, name, **options)

    def cloudevent(self, type: str, **options: Any) -> Callable[[F], F]:
        """Decorator: handle CloudEvents of ``type`` (``"*"`` handles every other type)."""
        return self._registrar(Trigger.CLOUDEVENT, type, **options)

    def websocket(self, route: str = "*", **options: Any) -> Callable[[F], F]:
        """Decorator: handle ``WebSocketEvent`` values sent to ``route``.

        ``route`` is the platform's route (API Gateway's route key: ``"$connect"``,
        ``"$disconnect"``, ``"$default"`` or a custom one); ``"*"`` takes every route
        without a handler of its own. What the handler returns answers the event (see
        the provider's page): for ``$connect``, an ``HttpResponse`` with an error
        status refuses the connection.
        """
        return self._registrar(Trigger.WEBSOCKET, route, **options)

    def native(self, provider: str = "*", **options: Any) -> Callable[[F], F]:
        """Decorator: the escape hatch, for events no typed registration can take.

        The handler gets the event in the provider's native form (the Lambda event
        dict, say) as its ``Any``-annotated parameter, and its return value goes back
        to the provider unchanged. ``provider`` (``"aws"``...) limits it to one
        adapter; ``"*"`` takes every adapter's. An adapter hands it only what it does
        not recognise at all; without one, such an event raises ``UnsupportedEventError``.
        """
        return self._registrar(Trigger.NATIVE, provider, **options)

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

    # -- composition ----------------------------------------------------------

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Add every handler of ``router``, with its extensions; HTTP paths get ``prefix``.

        The router's middleware run around each of its handlers (inside this router's
        own, when this router is included in turn), its dependencies are resolved
        before them, and its exception handlers take precedence over this router's
        for its handlers.

        Raises:
            ConfigurationError: a malformed prefix, or a handler that clashes with one
                already here.
        """
        _check_prefix(prefix)
        middleware = tuple(router._middleware)
        dependencies = tuple(router._dependencies)
        handlers = dict(router._exception_handlers)
        for route in router.routes:
            self._add(route.extended(prefix, middleware, dependencies, handlers))
        for reg in router.registrations:
            self._add_registration(
                Registration(
                    reg.trigger,
                    reg.name,
                    reg.endpoint,
                    reg.options,
                    middleware=middleware + reg.middleware,
                    dependencies=dependencies + reg.dependencies,
                    exception_handlers={**handlers, **reg.exception_handlers},
                )
            )


def _check_prefix(prefix: str) -> None:
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ConfigurationError(f"prefix must start and not end with '/': {prefix!r}")


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
