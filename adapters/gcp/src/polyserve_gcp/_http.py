"""The HTTP entry point: Flask requests in, Flask responses out.

``http(app)`` returns the function functions-framework calls with a
``flask.Request`` (``--signature-type=http``). The request becomes a
``polyserve.HttpRequest``:

- ``path``: the path of the request line as the WSGI server received it (gunicorn's
  ``RAW_URI``, which functions-framework runs under, or ``REQUEST_URI``), decoded by
  ``polyserve.events.decode_path``: a malformed escape, an encoded slash or a path
  that is not UTF-8 is a 400 ``invalid_path``. Without either key (another server,
  or an app mounted below a ``SCRIPT_NAME``), Werkzeug's ``request.path``, which the
  server has decoded already;
- ``query``: parsed from the raw query string, repeated keys kept;
- ``headers``: every header; the WSGI server has already joined repeated
  request headers into one comma-separated value;
- ``client``: the first address of ``X-Forwarded-For``, else the peer address;
- ``request_id``: ``Function-Execution-Id``, else the trace id of
  ``X-Cloud-Trace-Context``, else a generated one.

Two paths belong to the adapter rather than the app. A POST to ``push_path``
(default ``/_pubsub``) carrying a Pub/Sub push envelope goes to the topic, queue
or schedule handler (the topic may follow the path: ``/_pubsub/orders`` or
``/_pubsub/projects/P/topics/orders``; without it the subscription names the
handler). A POST to ``schedule_path`` (default ``/_scheduler``) is a Cloud
Scheduler HTTP job (see ``_scheduler``). Both answer 204 on success, so Pub/Sub
acknowledges; a rejected event gets its 4xx and a failed handler 500, so Pub/Sub
redelivers. Set either path to ``None`` to give it back to the app.

A streamed response (a handler's iterator, a mounted app's ``StreamingResponse``)
goes out chunk by chunk, as a Flask response over an iterator, which gunicorn
sends chunked.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Protocol

from polyserve.adapter import as_object, error_response
from polyserve.errors import ConfigurationError, EventError, MalformedEventError, PolyserveError
from polyserve.events import Headers, HttpRequest, HttpResponse, QueryParams, decode_path
from polyserve_gcp import _pubsub, _scheduler, _tracing
from polyserve_gcp._context import DEFAULT_TIMEOUT, make_context
from polyserve_gcp._identity import HEADER_SOURCES, Identity
from polyserve_gcp._names import Names

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import flask

    from polyserve import App, Context
    from polyserve.adapter import Event
    from polyserve.identity import HeaderTrust
    from polyserve.streaming import StreamingResponse
    from polyserve.tracing import TraceContext
    from polyserve_gcp.types import HttpFunction

    class _HeaderReader(Protocol):
        def get(self, key: str, /) -> str | None: ...


__all__ = ["flask_response", "http", "is_http", "matches", "request_id", "to_event", "to_native"]

_EXECUTION_ID = "function-execution-id"
_TRACE_CONTEXT = "x-cloud-trace-context"


def http(
    app: App,
    *,
    names: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    push_path: str | None = "/_pubsub",
    schedule_path: str | None = "/_scheduler",
    identity_headers: Mapping[str, HeaderTrust] | None = None,
) -> HttpFunction:
    """A functions-framework HTTP function that serves ``app``.

    Args:
        app: the application.
        names: native source id -> logical name, for push and scheduler requests.
        timeout: the function's timeout in seconds, for ``ctx.deadline`` when
            ``FUNCTION_TIMEOUT_SEC`` is not set.
        push_path: where Pub/Sub push subscriptions deliver, or ``None``.
        schedule_path: where Cloud Scheduler HTTP jobs call, or ``None``.
        identity_headers: which caller headers ``Context.principal`` may be read from:
            ``{"iap": True}`` or ``{"iap": verifier}`` behind Identity-Aware Proxy,
            ``{"iam": True}`` for a service that requires authentication (see
            ``polyserve_gcp._identity``). None by default: clients can send them too.

    Raises:
        ConfigurationError: a path that does not start with ``/`` or ends with one,
            or an ``identity_headers`` entry that is unknown or has a wrong value.
    """
    for path in (push_path, schedule_path):
        if path is not None and (not path.startswith("/") or path.endswith("/")):
            raise ConfigurationError(f"adapter paths must start and not end with '/': {path!r}")
    lookup = Names(names or {})
    trust: Mapping[str, HeaderTrust] = {}
    if identity_headers:
        from polyserve.identity import header_trust

        trust = header_trust(identity_headers, HEADER_SOURCES)
    identify = Identity(trust)

    def handle_http(request: flask.Request) -> flask.Response:
        raw = _unwrap(request)
        ctx = make_context(app, request_id(raw.headers), timeout, raw)
        try:
            native = to_event(raw, ctx, lookup)
        except EventError as exc:
            return to_native(error_response(exc, ctx), raw, ctx)
        ctx.principal_from(identify, native.headers)
        push = _below(native.path, push_path)
        schedule = _below(native.path, schedule_path)
        if push is not None:
            ctx.trace_from(_push_trace, native)
            response = _deliver(app, native, ctx, lambda: _push(app, lookup, native, push))
        elif schedule is not None:
            response = _deliver(
                app, native, ctx, lambda: _scheduler.from_request(native, schedule, lookup)
            )
        else:
            response = app.handle_http(native, ctx, stream=True)
            if response.__class__ is not HttpResponse:  # loaded only by apps that stream
                from polyserve.streaming import StreamingResponse

                if isinstance(response, StreamingResponse):
                    return _streamed(response, ctx)
        return to_native(response, raw, ctx)

    return handle_http


is_http = True


def matches(raw: flask.Request) -> bool:
    """Every request functions-framework routes to an HTTP function is one."""
    return True


def request_id(headers: _HeaderReader) -> str:
    """``Function-Execution-Id``, the trace id of ``X-Cloud-Trace-Context``, or a new id.

    ``headers`` are a request's, a Flask one's or polyserve's (names in any case).
    """
    execution = (headers.get(_EXECUTION_ID) or "").strip()
    if execution:
        return execution
    trace = (headers.get(_TRACE_CONTEXT) or "").split("/", 1)[0].strip()
    return trace or uuid.uuid4().hex


def to_event(raw: flask.Request, context: Context, names: Mapping[str, str]) -> HttpRequest:
    """The ``HttpRequest`` for a Flask request (see the module docstring).

    Its ``request_id`` is the invocation's id (``request_id`` of its headers). The
    push and scheduler paths are the entry point's: ``names`` are used there.

    Raises:
        MalformedEventError: code ``invalid_path`` for a path ``decode_path`` refuses.
    """
    request = _unwrap(raw)
    headers = Headers(list(request.headers.items()))
    forwarded = headers.get("x-forwarded-for", "").split(",", 1)[0].strip()
    return HttpRequest(
        method=request.method.upper(),
        path=_path(request),
        query=QueryParams.from_string(request.query_string.decode("utf-8", "replace")),
        headers=headers,
        body=request.get_data(cache=True),
        client=forwarded or request.remote_addr or None,
        request_id=context.invocation_id,
        raw=request,
    )


def to_native(outcome: HttpResponse, raw: flask.Request, context: Context) -> flask.Response:
    """The Flask response for ``outcome`` (``flask_response``)."""
    return flask_response(outcome)


def flask_response(response: HttpResponse) -> flask.Response:
    """A Flask response with exactly the response's status, headers and body.

    Repeated headers (``Set-Cookie``) stay separate, Flask adds no default
    ``Content-Type``, and ``Content-Length`` is Werkzeug's count unless the
    response sets its own (a HEAD answer keeps the GET length).
    """
    import flask

    native = flask.Response(response.body, status=response.status)
    length = native.headers.get("Content-Length")
    native.headers.clear()
    for name, value in response.headers.multi_items():
        native.headers.add(name, value)
    if length is not None and "content-length" not in response.headers:
        native.headers["Content-Length"] = length
    return native


def _unwrap(request: flask.Request) -> flask.Request:
    # ``flask.request`` is a context-local proxy; ``raw`` must stay usable after the
    # request context ends, so it keeps the request object itself.
    unwrap = getattr(request, "_get_current_object", None)
    return unwrap() if callable(unwrap) else request


def _streamed(response: StreamingResponse, context: Context) -> flask.Response:
    """A Flask response that sends ``response``'s chunks as they come.

    Werkzeug sends a body given as an iterator without ``Content-Length``, so the
    server (gunicorn under functions-framework) sends it chunked.
    """
    import flask

    from polyserve.streaming import iterate_blocking

    native = flask.Response(iterate_blocking(response, context), status=response.status)
    native.headers.clear()
    for name, value in response.headers.multi_items():
        native.headers.add(name, value)
    return native


def _path(request: flask.Request) -> str:
    """The request's path, decoded by polyserve's rule where the raw one is known."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not isinstance(raw, str) or environ.get("SCRIPT_NAME"):
        # PATH_INFO, decoded by the server: an encoded slash is a slash by now.
        return request.path
    if not raw.startswith("/"):  # the absolute form, "http://host/path?query"
        from urllib.parse import urlsplit

        raw = urlsplit(raw).path
    try:
        # A WSGI string holds the bytes of the request line, one character each.
        line = raw.partition("?")[0].encode("latin-1")
    except UnicodeEncodeError:
        raise MalformedEventError("request path is not valid text", code="invalid_path") from None
    return decode_path(line or b"/")


def _below(path: str, prefix: str | None) -> str | None:
    """The rest of ``path`` under ``prefix`` ('' for the prefix itself), or ``None``."""
    if prefix is None:
        return None
    if path == prefix or path == prefix + "/":
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1 :].strip("/")
    return None


def _push(app: App, names: Names, request: HttpRequest, topic: str) -> Event:
    envelope = as_object(request.json(), "Pub/Sub push body")
    if not _pubsub.is_push_envelope(envelope):
        raise MalformedEventError(
            "the request is not a Pub/Sub push envelope with 'message' and 'subscription'"
        )
    return _pubsub.route(
        app,
        names,
        envelope["message"],
        topic=topic or None,
        subscription=envelope["subscription"],
        attempt=envelope.get("deliveryAttempt"),
        fallback_id=request.request_id,
        fallback_time=None,
        raw=request.raw,
    )


def _push_trace(request: HttpRequest) -> TraceContext | None:
    """A push delivery continues its message's producer trace (the attributes the Pub/Sub
    client libraries write), else the push request's own; never raises."""
    try:
        message = request.json().get("message")
        found = _tracing.pubsub_trace(message.get("attributes"))
    except Exception:  # not a push envelope: _push answers that with a 400
        found = None
    return found if found is not None else _tracing.trace_of(request.raw)


def _deliver(
    app: App, request: HttpRequest, ctx: Context, translate: Callable[[], Event]
) -> HttpResponse:
    """Run an event that arrived over HTTP and answer the way Pub/Sub and Scheduler expect."""
    if request.method != "POST":
        detail = f"{request.method} is not allowed"
        return HttpResponse.problem(
            405, "method_not_allowed", detail, invocation_id=ctx.invocation_id,
            headers={"allow": "POST"},
        )  # fmt: skip
    try:
        dispatch = _translated(translate)
        app.handle_event(dispatch.trigger, dispatch.name, dispatch.event, ctx)
    except Exception as exc:
        # A rejected event gets its 4xx; a failed handler a 5xx, so Pub/Sub redelivers.
        # Either way the trace goes to the log only.
        return error_response(exc, ctx)
    return HttpResponse.empty(204)


def _translated(translate: Callable[[], Event]) -> Event:
    try:
        return translate()
    except PolyserveError:
        raise
    except Exception as exc:
        # The readers are typed; this guard keeps an unforeseen shape a 400, not a 500.
        raise MalformedEventError(f"cannot read the event: {exc!r}") from exc
