"""Error answers the adapter gives itself: problem+json bodies and 4xx for bad events.

functions-framework answers 500 whenever a CloudEvent or background function
raises. For an event the adapter rejects (``EventError``: unsupported,
malformed, failing validation) that hides a client error among crashes, so the
event entry points register a Flask error handler that answers with the
error's own status (400, 413, 415 or 422) and an ``application/problem+json``
body. Every other exception keeps functions-framework's 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyserve.errors import EventError, PolyserveError
from polyserve.events import HttpResponse

if TYPE_CHECKING:
    import flask

__all__ = ["answer_event_errors", "problem_for"]


def problem_for(exc: PolyserveError, invocation_id: str = "") -> HttpResponse:
    """The problem response for a polyserve error whose fields are safe to show."""
    return HttpResponse.problem(
        exc.status, exc.code, exc.detail, invocation_id=invocation_id, extra=exc.to_dict()
    )


def answer_event_errors() -> None:
    """Make the running functions-framework app answer ``EventError`` with its 4xx status.

    functions-framework imports the function's source inside its Flask app
    context, so an entry point built at module level finds the app there.
    Outside functions-framework (no Flask loaded, or no app context) this does
    nothing.
    """
    import sys

    if "flask" not in sys.modules:
        return
    import flask

    if not flask.has_app_context():
        return
    try:
        flask.current_app.register_error_handler(EventError, _answer)
    except AssertionError:
        # Flask refuses new handlers once the app has served a request; the
        # entry point then works with functions-framework's plain 500s.
        return


def _answer(exc: EventError) -> flask.Response:
    import flask

    from polyserve_gcp._http import flask_response

    invocation_id = flask.request.headers.get("ce-id", "") if flask.has_request_context() else ""
    return flask_response(problem_for(exc, invocation_id))
