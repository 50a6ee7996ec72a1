"""Answering HTTP requests for an ``App``: route, run the pipeline, render, and errors.

Loaded with the first request rather than with the app: it needs the event
classes, and those need ``dataclasses``, which a cold start should not pay for
while the app is being built. Each route gets a plan on its first request: its
binder, its middleware chain and its exception handlers, worked out once.
"""

from __future__ import annotations

from polyserve._json import dumps
from polyserve.errors import HttpError, InvalidHeaderError, PayloadTooLargeError, PolyserveError
from polyserve.events.http import _CONTENT_TYPES, HttpResponse
from polyserve.paths import normalize_path
from polyserve.pipeline import chain, find_exception_handler, is_async_callable

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from polyserve.app import App
    from polyserve.binding import Binder
    from polyserve.context import Context
    from polyserve.events.http import HttpRequest
    from polyserve.mount import Mount
    from polyserve.params import Dependency
    from polyserve.pipeline import ExceptionHandler, Invocation, Step
    from polyserve.routing import Route

__all__ = ["HttpDispatch", "error_response", "render"]

# The shared JSON content type: responses need not check it again (see HttpResponse).
_JSON = _CONTENT_TYPES["application/json"]
_OCTETS = _CONTENT_TYPES["application/octet-stream"]


class _Plan:
    """What running one route takes, worked out on its first request."""

    __slots__ = ("binder", "dependencies", "handlers", "route", "step")

    def __init__(
        self,
        route: Route,
        binder: Binder,
        dependencies: tuple[Dependency, ...],
        handlers: Mapping[type[BaseException], ExceptionHandler],
    ) -> None:
        self.route = route
        self.binder = binder
        self.dependencies = dependencies
        self.handlers = handlers
        self.step: Step = _unset


async def _unset(request: Any, inv: Invocation) -> Any:
    raise AssertionError("a plan's step is set when the plan is built")


class HttpDispatch:
    """The HTTP half of an ``App``, built on its first request."""

    def __init__(self, app: App) -> None:
        self._app = app
        # Keyed by id(route): an app never drops a route, so an id stays its route's.
        self._plans: dict[int, _Plan] = {}
        self._async_handlers: dict[Callable[..., Any], bool] = {}
        self._chain = chain(app.middleware_stack(), self._route_step, http=True)

    async def serve(
        self, request: HttpRequest, inv: Invocation, *, stream: bool = False
    ) -> HttpResponse:
        """Answer ``request``. Never raises: every error becomes an HTTP error response.

        A ``StreamingResponse`` is returned as such with ``stream``, else read whole.
        """
        try:
            try:
                response = await self._chain(request, inv)
            except Exception as exc:  # a middleware raised, and no middleware caught it
                response = await self._error(exc, request, inv, None)
            if response.__class__ is not HttpResponse:
                response = render(response, 200)
            if self._app.cors is not None or request.method == "HEAD":
                response = self._finish(request, response)
        finally:
            if inv.has_teardowns:
                await inv.close()
        if response.__class__ is not HttpResponse and not stream:
            # A StreamingResponse (render gave HttpResponse or it): its module is
            # loaded only by apps that stream, as the check above costs nothing.
            from polyserve.streaming import StreamingResponse, collect, collect_blocking

            if isinstance(response, StreamingResponse):
                try:
                    if inv.is_blocking:
                        return collect_blocking(response)
                    return await collect(response, offload=inv.offload)
                except Exception as exc:
                    return error_response(exc, inv.context)
        return response

    async def _route_step(self, request: HttpRequest, inv: Invocation) -> HttpResponse:
        # The innermost step of the app's middleware: find the route and run its plan.
        plan: _Plan | None = None
        try:
            cors = self._app.cors
            if cors is not None and cors.is_preflight(request):
                return cors.preflight(request)
            found = self._find(request)
            if found.__class__ is not tuple:
                if isinstance(found, HttpResponse):
                    return found
                return await self._mounted(found, request, inv)  # type: ignore[arg-type]
            route, inv.path_params = found
            inv.context.route = route.path
            plan = self._plans.get(id(route)) or self._plan(route)
            response = await plan.step(request, inv)
            return response if response.__class__ is HttpResponse else render(response, 200)
        except Exception as exc:
            return await self._error(exc, request, inv, plan)

    def _find(self, request: HttpRequest) -> tuple[Route, dict[str, Any]] | HttpResponse | Mount:
        """The route and its parameters, the mounted ASGI app that takes the request,
        or the response when no handler is to run.

        Raises:
            HttpError: 404 or 405 (with ``Allow``).
            PayloadTooLargeError: the body is over the app's limit.
            MalformedEventError: the path is not one routes may see (``invalid_path``).
        """
        app = self._app
        if len(request.body) > app.max_body_size:
            raise PayloadTooLargeError(f"request body exceeds {app.max_body_size} bytes")
        path = normalize_path(request.path)
        method = request.method.upper()
        match = app.match(method, path)
        if match.route is not None:
            return match.route, match.params  # a new dict for each match
        for mount in app.mounts:  # longest prefix first
            if mount.covers(path):
                return mount
        if not match.allowed:
            raise HttpError(404, "not_found", f"no route matches {path}")
        allow = ", ".join(sorted(match.allowed | {"OPTIONS"}))
        if method == "OPTIONS":
            return HttpResponse.empty(204, {"allow": allow})
        raise HttpError(
            405, "method_not_allowed", f"{method} is not allowed", headers={"allow": allow}
        )

    async def _mounted(self, mount: Mount, request: HttpRequest, inv: Invocation) -> HttpResponse:
        # A mounted ASGI app in place of a handler: the app's middleware are around it.
        inv.context.route = (mount.prefix or "") + "/{path:path}"
        if inv.is_blocking:
            return mount.call_blocking(request, inv.context)
        return await mount.call(request, inv.context)

    def _plan(self, route: Route) -> _Plan:
        app = self._app
        binder = app.resolver.binder(route.endpoint, route.param_names, http=True)
        plan = _Plan(
            route, binder, app.dependency_stack() + route.dependencies, route.exception_handlers
        )
        plan.step = chain(route.middleware, self._endpoint(plan), http=True)
        self._plans[id(route)] = plan
        return plan

    def _endpoint(self, plan: _Plan) -> Step:
        # Loaded with the first route plan: a request to a mounted ASGI app needs none.
        from polyserve.binding import Shape

        resolver = self._app.resolver
        binder, route = plan.binder, plan.route
        fn, is_async, status, shape = route.endpoint, binder.is_async, route.status, binder.shape
        needs_dependencies = bool(binder.dependencies or plan.dependencies)
        path_only, body_only = shape is Shape.PATH_ONLY, shape is Shape.BODY_ONLY
        names = route.param_names

        async def endpoint(request: HttpRequest, inv: Invocation) -> HttpResponse:
            try:
                if body_only and not needs_dependencies:
                    result = await inv.call(fn, is_async, binder.body_argument(request))
                    return render(result, status)
                kwargs: Mapping[str, Any]
                if needs_dependencies:
                    for depends in plan.dependencies:
                        await resolver.dependency(depends, request, inv, names, http=True)
                    kwargs = await resolver.http_arguments(binder, request, inv, names)
                elif path_only:
                    kwargs = inv.path_params
                else:
                    kwargs = await resolver.http_arguments(binder, request, inv, names)
                if is_async or inv.offload:
                    result = await inv.call(fn, is_async, **kwargs)
                else:
                    # What inv.call would do, without a coroutine and two copies of kwargs.
                    result = fn(**kwargs)
                return render(result, status)
            except Exception as exc:
                inv.error = exc
                return await self._error(exc, request, inv, plan)

        return endpoint

    async def _error(
        self, exc: Exception, request: HttpRequest, inv: Invocation, plan: _Plan | None
    ) -> HttpResponse:
        """The response for ``exc``: the most specific exception handler's, or the default."""
        context = inv.context
        handler = find_exception_handler(
            exc, plan.handlers if plan is not None else {}, self._app.exception_handlers
        )
        if handler is None:
            return error_response(exc, context)
        is_async = self._async_handlers.get(handler)
        if is_async is None:
            is_async = self._async_handlers[handler] = is_async_callable(handler)
        try:
            result = await inv.call(handler, is_async, exc, request, context)
        except Exception as handler_exc:
            if handler_exc is not exc:
                context.logger.exception("an exception handler failed", handler_exc)
            return error_response(exc, context)
        return result if result.__class__ is HttpResponse else render(result, 200)

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        cors = self._app.cors
        if cors is not None:
            response = cors.apply(request, response)
        if request.method == "HEAD" and response.body:
            headers = response.headers.with_set("content-length", str(len(response.body)))
            response = HttpResponse(response.status, headers, b"")
        elif request.method == "HEAD" and response.__class__ is not HttpResponse:
            # A StreamingResponse: no body goes out, so the stream is dropped unread.
            _drop(getattr(response, "chunks", None))
            response = HttpResponse(response.status, response.headers, b"")
        return response


def _drop(chunks: Any) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def render(result: Any, status: int) -> HttpResponse:
    """The response for a handler's return value.

    ``HttpResponse`` as is; ``dict``, ``list``, a pydantic model or a dataclass as
    JSON; ``str`` as text; ``bytes`` as binary; an iterator or async iterator of
    ``bytes`` as a ``StreamingResponse`` (``application/octet-stream``); ``None``
    as 204 (or the route's status, if not 200).
    """
    cls = result.__class__
    if cls is dict or cls is list:  # the commonest results, first
        return HttpResponse(status, _JSON, dumps(result))
    if isinstance(result, HttpResponse):
        return result
    if result is None:
        return HttpResponse.empty(204 if status == 200 else status)
    if isinstance(result, str):
        return HttpResponse.text(result, status)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return HttpResponse.binary(bytes(result), status)
    serializer = getattr(cls, "__pydantic_serializer__", None)
    if serializer is not None and hasattr(result, "model_dump"):
        # The model's own serializer, straight to JSON bytes. Before the stream check:
        # a missing attribute of a model class is looked up at length by pydantic.
        return HttpResponse(status, _JSON, serializer.to_json(result))
    if hasattr(cls, "__anext__") or hasattr(cls, "__next__"):  # polyserve.streaming.is_stream
        from polyserve.streaming import StreamingResponse

        return StreamingResponse(status, _OCTETS, b"", result)
    return HttpResponse.json(result, status)


def error_response(exc: Exception, context: Context) -> HttpResponse:
    """The HTTP answer for ``exc`` when no exception handler takes it.

    A polyserve error with a 4xx status (or one marked ``is_exposed``) shows its
    ``code`` and ``detail``; anything else becomes a generic 500 carrying only the
    invocation id, and its traceback goes to the log.
    """
    if isinstance(exc, PolyserveError) and (exc.status < 500 or exc.is_exposed):
        if exc.status >= 500:
            context.logger.warning("request failed", code=exc.code, detail=exc.detail)
        try:
            return HttpResponse.problem(
                exc.status, exc.code, exc.detail, invocation_id=context.invocation_id,
                extra=exc.to_dict(), headers=exc.headers or None,
            )  # fmt: skip
        except InvalidHeaderError as bad:
            # An error whose headers HTTP cannot carry is answered as any other fault,
            # so that this function never raises.
            exc = bad
    # The trace goes to the log only; the client sees a generic body and the invocation id.
    context.logger.exception("unhandled error", exc)
    return HttpResponse.problem(
        500, "internal_error", "internal server error", invocation_id=context.invocation_id
    )
