"""Answering HTTP requests for an ``App``: route, bind, call, render, and errors.

Loaded with the first request rather than with the app, since it needs the
event classes, and those need ``dataclasses``, which costs a cold start several
milliseconds to import. Each route gets a call plan on its first request, so
the common handler (one that takes exactly its path parameters) is called with
no binding work at all.
"""

from __future__ import annotations

from polyserve._frozen import maker
from polyserve._json import dumps
from polyserve.errors import HttpError, InvalidHeaderError, PayloadTooLargeError, PolyserveError
from polyserve.events.http import Headers, HttpResponse
from polyserve.routing import normalize_path

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from polyserve.app import App
    from polyserve.binding import Binder
    from polyserve.context import Context
    from polyserve.events.http import HttpRequest
    from polyserve.routing import Route

    # (endpoint, binder or None when the handler takes exactly its path parameters,
    #  success status, is async, takes just a body positionally)
    Plan = tuple[Callable[..., Any], Binder | None, int, bool, bool]

__all__ = ["HttpDispatch", "render"]

_JSON = Headers((("content-type", "application/json"),))
# HttpResponse(status, headers, body), built the fastest way: once per request.
_response = maker(HttpResponse)


class HttpDispatch:
    """The HTTP half of an ``App``. ``app.handle_http`` creates one on first use."""

    __slots__ = ("_app", "_plans", "_static")

    def __init__(self, app: App) -> None:
        self._app = app
        # Keyed by id(route): routes are never removed from an app, and hashing a
        # route by its fields would cost more than the lookup saves.
        self._plans: dict[int, Plan] = {}
        # path -> method -> plan, for the routes without parameters that requests
        # have reached. Such a path always reaches the same route (a route added
        # later never takes the place of an earlier one), so a request whose path
        # is a key here skips route matching.
        self._static: dict[str, dict[str, Plan]] = {}

    def handle(self, request: HttpRequest, context: Context) -> HttpResponse:
        """Answer ``request``. Never raises: every error becomes an HTTP error response."""
        app = self._app
        method = request.method
        try:
            plan: Plan | None = None
            if app.cors is None and len(request.body) <= app.max_body_size:
                static = self._static.get(request.path)
                if static is not None:
                    plan = static.get(method)
            if plan is not None:
                params: dict[str, Any] = {}
                found: tuple[Plan, dict[str, Any]] | HttpResponse = (plan, params)
            else:
                found = self._find(request, context)
            if found.__class__ is tuple:
                plan, params = found
                endpoint, binder, status, is_async, body_only = plan
                if binder is None:
                    result = endpoint(**params)
                elif body_only:
                    result = endpoint(binder.body_value(request))
                else:
                    result = endpoint(**binder.http_kwargs(request, context, params))
                if is_async:
                    from polyserve._aio import run_sync

                    result = run_sync(result)
                cls = result.__class__
                if cls is dict:
                    response = _response(status, _JSON, dumps(result))
                elif _KINDS.get(cls) == _MODEL:  # see render
                    serialized = cls.__pydantic_serializer__.to_json(result)
                    response = _response(status, _JSON, serialized)
                else:
                    response = render(result, status)
            else:
                response = found  # type: ignore[assignment]  # not a tuple: a response
        except Exception as exc:
            response = error_response(exc, context)
        if app.cors is not None or method == "HEAD":
            return self._finish(request, response)
        return response

    def _find(
        self, request: HttpRequest, context: Context
    ) -> tuple[Plan, dict[str, Any]] | HttpResponse:
        """The plan of the route for ``request`` and its parameters, or the response to send.

        Raises what ``_route`` raises.
        """
        app = self._app
        path = request.path
        method = request.method
        # The common request: a plain path to a route that exists, with no CORS to
        # apply. Anything else takes _route, which sorts out the rest.
        if (
            app.cors is None
            and len(request.body) <= app.max_body_size
            and path[:1] == "/"
            and "\x00" not in path
            and "/." not in path
            and (path[-1] != "/" or path == "/")
            and method.isupper()
        ):
            found = app.lookup(method, path)
            if found is not None:
                route, params = found
                plan = self._plans.get(id(route)) or self._plan(route)
                if not route.param_names:
                    self._static.setdefault(path, {})[method] = plan
                return plan, params
        answer = self._route(request, context)
        if isinstance(answer, HttpResponse):
            return answer
        route, params = answer
        return self._plans.get(id(route)) or self._plan(route), params

    async def handle_async(self, request: HttpRequest, context: Context) -> HttpResponse:
        """Answer ``request`` from async code. Sync handlers run in a worker thread."""
        try:
            found = self._route(request, context)
            if isinstance(found, tuple):
                route, params = found
                endpoint, binder, status, is_async, _ = self._plan(route)
                kwargs = params if binder is None else binder.http_kwargs(request, context, params)
                if is_async:
                    result = await endpoint(**kwargs)
                else:
                    import asyncio  # already loaded: this only runs inside an event loop

                    result = await asyncio.to_thread(endpoint, **kwargs)
                response = render(result, status)
            else:
                response = found
        except Exception as exc:
            response = error_response(exc, context)
        return self._finish(request, response)

    def _route(
        self, request: HttpRequest, context: Context
    ) -> tuple[Route, dict[str, Any]] | HttpResponse:
        """The route and its parameters, or the response when no handler is to run.

        Raises:
            HttpError: 404 or 405 (with ``Allow``).
            PayloadTooLargeError: the body is over the app's limit.
            MalformedEventError: the path is not one routes may see (``invalid_path``).
        """
        app = self._app
        if len(request.body) > app.max_body_size:
            raise PayloadTooLargeError(f"request body exceeds {app.max_body_size} bytes")
        path = request.path
        if path[:1] != "/" or "\x00" in path or "/." in path:
            path = normalize_path(path)  # rejects what routes must not see
        elif len(path) > 1 and path[-1] == "/":
            path = path[:-1]
        method = request.method
        if not method.isupper():
            method = method.upper()
        cors = app.cors
        if cors is not None and cors.is_preflight(request):
            return cors.preflight(request)
        found = app.lookup(method, path)
        if found is not None:
            return found
        match = app.match(method, path)
        if match.route is not None:  # HEAD answered by the GET route
            return match.route, dict(match.params)
        if not match.allowed:
            raise HttpError(404, "not_found", f"no route matches {path}")
        allow = ", ".join(sorted(match.allowed | {"OPTIONS"}))
        if method == "OPTIONS":
            return HttpResponse.empty(204, {"allow": allow})
        raise HttpError(
            405, "method_not_allowed", f"{method} is not allowed", headers={"allow": allow}
        )

    def _plan(self, route: Route) -> Plan:
        plan = self._plans.get(id(route))
        if plan is None:
            binder = self._app._binder(route.endpoint, route.param_names, http=True)
            plan = self._plans[id(route)] = (
                route.endpoint,
                None if binder.takes_path_params_only else binder,
                route.status,
                binder.is_async,
                binder.takes_body_only,
            )
        return plan

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        cors = self._app.cors
        if cors is not None:
            response = cors.apply(request, response)
        if request.method == "HEAD" and response.body:
            headers = response.headers.with_set("content-length", str(len(response.body)))
            response = HttpResponse(response.status, headers, b"")
        return response


def render(result: Any, status: int) -> HttpResponse:
    """The response for a handler's return value (see ``App.handle_http`` for the rules)."""
    cls = result.__class__
    if cls is dict or cls is list:  # the commonest results, first
        return _response(status, _JSON, dumps(result))
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _kind(cls)
        if len(_KINDS) < 512:  # result classes come from the app: a handful
            _KINDS[cls] = kind
    if kind == _MODEL:
        # The model's core serializer, straight to bytes: model_dump_json would wrap
        # the same call, decode the bytes to text, and leave them to be encoded again.
        return _response(status, _JSON, cls.__pydantic_serializer__.to_json(result))
    if kind == _RESPONSE:
        return result  # type: ignore[no-any-return]  # an HttpResponse, by its class
    if kind == _NONE:
        return HttpResponse.empty(204 if status == 200 else status)
    if kind == _TEXT:
        return HttpResponse.text(result, status)
    if kind == _BYTES:
        return HttpResponse.binary(bytes(result), status)
    return HttpResponse.json(result, status)


# What a result of each class renders as, learned as results arrive.
_MODEL, _RESPONSE, _NONE, _TEXT, _BYTES, _OTHER = range(6)
_KINDS: dict[type, int] = {}


def _kind(cls: type) -> int:
    if issubclass(cls, HttpResponse):
        return _RESPONSE
    if cls is type(None):
        return _NONE
    if issubclass(cls, str):
        return _TEXT
    if issubclass(cls, (bytes, bytearray, memoryview)):
        return _BYTES
    # A pydantic model whose core serializer is built (pydantic is not imported here:
    # a model is recognised by its attributes).
    serializer = cls.__dict__.get("__pydantic_serializer__")
    if serializer is not None and type(serializer).__name__ == "SchemaSerializer":
        return _MODEL
    return _OTHER


def error_response(exc: Exception, context: Context) -> HttpResponse:
    """The HTTP answer for ``exc``; see ``polyserve.app.error_response``."""
    if isinstance(exc, PolyserveError) and (exc.status < 500 or exc.is_exposed):
        if exc.status >= 500:
            context.logger.warning("request failed", code=exc.code, detail=exc.detail)
        try:
            return HttpResponse.problem(
                exc.status, exc.code, exc.detail, invocation_id=context.invocation_id,
                extra=exc.to_dict(), headers=exc.headers or None,
            )  # fmt: skip
        except InvalidHeaderError as bad:
            # An error class whose headers HTTP cannot carry: answered as any other
            # fault, so that this function never raises.
            exc = bad
    # The trace goes to the log only; the client sees a generic body and the invocation id.
    context.logger.exception("unhandled error", exc)
    return HttpResponse.problem(
        500, "internal_error", "internal server error", invocation_id=context.invocation_id
    )
