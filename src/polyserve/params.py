"""Markers that say where a handler parameter comes from.

``Query``, ``Header`` and ``Body`` go in ``Annotated`` (``limit: Annotated[int,
Query(alias="max")] = 10``); ``Depends`` goes in ``Annotated`` or as the default
value (``db: Database = Depends(database)``). Parameters without a marker are
bound by their type and name (see ``polyserve.binding``).
"""

from __future__ import annotations

from polyserve._value import Value
from polyserve.errors import ConfigurationError

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal

    Scope = Literal["invocation", "process"]

__all__ = ["Body", "Dependency", "Depends", "Header", "Query"]


class _Aliased(Value):
    # A marker with an optional ``alias``: the name to bind from, if not the parameter's.
    __slots__ = ("alias",)
    _fields = ("alias",)
    alias: str | None

    def __init__(self, alias: str | None = None) -> None:
        object.__setattr__(self, "alias", alias)


class Query(_Aliased):
    """Bind the parameter to a query parameter (``alias`` overrides its name)."""

    __slots__ = ()


class Header(_Aliased):
    """Bind the parameter to a header (default name: the parameter with '-' for '_')."""

    __slots__ = ()


class Body(Value):
    """Bind the parameter to the request body, decoded as JSON unless ``bytes``/``str``."""

    __slots__ = ()


class RequestOrEvent(Value):
    """Marker for wrappers that serve every trigger (``@idempotent``): bind the
    ``HttpRequest`` on an HTTP route, and the event on any other trigger.

    ``Annotated[object, RequestOrEvent()]``: on a route, a plain ``object`` parameter
    would be a query parameter, and an ``HttpRequest`` one would not take events.
    """

    __slots__ = ()


def Depends(  # reads as a marker in a signature, like Query and Header
    provider: Callable[..., Any] | None = None,
    *,
    scope: Scope = "invocation",
    use_cache: bool = True,
) -> Any:
    """Bind the parameter to what ``provider`` returns.

    ``db: Annotated[Database, Depends(database)]`` or ``db: Database =
    Depends(database)``; both type-check, since this returns ``Any`` (the
    ``Dependency`` marker). See ``Dependency`` for what providers may take, the
    scopes and the caching.

    Raises:
        ConfigurationError: ``scope`` is not one of the two, or ``provider`` is not
            callable.
    """
    return Dependency(provider, scope=scope, use_cache=use_cache)


class Dependency(Value):
    """The marker ``Depends`` makes: bind the parameter to what ``provider`` returns.

    A provider is any callable, sync or async. Its own parameters are bound like a
    handler's: it may take the request or event, the ``Context``, path, query and
    header values, and other dependencies. A generator provider yields its value;
    the code after ``yield`` runs once the invocation's response (or result) is
    ready, with the handler's exception thrown in if it raised.

    ``scope="invocation"`` (the default) calls the provider once per invocation:
    every parameter that depends on it in that invocation gets the same value
    (with ``use_cache=False``, each gets its own call). ``scope="process"`` calls it
    once per process, on first use, and keeps the value for every later invocation:
    the place for SDK clients and connection pools, which each cloud advises
    creating outside the handler. A process-scoped provider may depend only on other
    process-scoped providers, since it outlives any one invocation; its teardown
    (for generators) runs when the app is closed.

    ``provider=None`` uses the parameter's annotation as the provider, for
    ``client: Annotated[Client, Depends()]``.

    Raises:
        ConfigurationError: ``scope`` is not one of the two, or ``provider`` is not
            callable.
    """

    __slots__ = ("provider", "scope", "use_cache")
    _fields = ("provider", "scope", "use_cache")

    provider: Callable[..., Any] | None
    scope: Scope
    use_cache: bool

    def __init__(
        self,
        provider: Callable[..., Any] | None = None,
        *,
        scope: Scope = "invocation",
        use_cache: bool = True,
    ) -> None:
        if scope not in ("invocation", "process"):
            raise ConfigurationError(f"scope must be 'invocation' or 'process', got {scope!r}")
        if provider is not None and not callable(provider):
            raise ConfigurationError(f"Depends needs a callable provider, got {provider!r}")
        set_field = object.__setattr__
        set_field(self, "provider", provider)
        set_field(self, "scope", scope)
        set_field(self, "use_cache", use_cache)

    def __repr__(self) -> str:
        name = getattr(self.provider, "__qualname__", repr(self.provider))
        return f"Depends({name}, scope={self.scope!r})"
