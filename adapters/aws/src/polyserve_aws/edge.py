"""Lambda@Edge: let CloudFront carry on with the request or response it had, changed or not.

A route answering a Lambda@Edge event returns a response that CloudFront sends
instead of going on (a request event) or instead of the origin's (a response
event). ``forward()`` is the other choice: the route returns it, and the function
hands CloudFront back the request (viewer and origin requests: on to the cache or
the origin) or the response (viewer and origin responses), unchanged or with the
changes ``forward`` names::

    from polyserve_aws import edge

    @app.get("/{rest:path}")
    def everything_else(rest: str) -> HttpResponse:
        if "." not in rest:  # a single-page app's route: the origin serves index.html
            return edge.forward(path="/index.html")
        return edge.forward(headers={"x-origin-verify": ORIGIN_SECRET})

On a request event ``forward`` may rewrite the path and the query string and set or
remove headers; on a response event it may set or remove headers (security headers
on the origin's responses, say). CloudFront lets an edge function touch neither
the headers it keeps to itself (``Connection``, ``X-Cache``, ``X-Amz-Cf-*``, ...) nor
those it makes read-only for the event (``Host`` on a viewer request,
``Content-Length``, ...): a ``forward`` that would is answered with a 500 and a
log line naming the header, rather than CloudFront's own 502.

Outside Lambda@Edge (another adapter, a test client) it is an empty 204 response.
"""

from __future__ import annotations

from polyserve.events import HttpResponse

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["FORWARD_HEADER", "forward"]

FORWARD_HEADER = "x-polyserve-edge-forward"
"""The header that marks a ``forward()`` response; never sent to a client by Lambda@Edge.

Its value is ``1`` for an unchanged request or response, else the changes as JSON.
"""


def forward(
    *,
    path: str | None = None,
    query: str | Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    remove: Iterable[str] = (),
) -> HttpResponse:
    """The answer that lets CloudFront go on with the event's own request or response.

    Args:
        path: the request's new path, decoded (``/docs/read me``); it is
            percent-encoded into CloudFront's ``uri``. Request events only.
        query: the request's new query string: as sent (``"a=1&b=2"``, without the
            ``?``), or pairs to encode. ``""`` removes it. Request events only.
        headers: headers to set, replacing any of the same name.
        remove: names of headers to remove.

    Raises:
        ValueError: ``path`` does not start with ``/``, ``path`` or ``query`` holds a
            control character, or a header is both set and removed.
        InvalidHeaderError: a header that HTTP cannot carry.
    """
    changes: dict[str, object] = {}
    if path is not None:
        if not path.startswith("/") or _has_control(path):
            raise ValueError("forward(path=...) must start with '/' and hold no control character")
        changes["path"] = path
    if query is not None:
        if not isinstance(query, str):
            from urllib.parse import urlencode

            query = urlencode(list(query.items()) if hasattr(query, "items") else list(query))
        if _has_control(query):
            raise ValueError("forward(query=...) must hold no control character")
        changes["query"] = query.removeprefix("?")
    to_set = dict(headers or {})
    names = sorted({name.lower() for name in to_set})
    removed = sorted({name.lower() for name in remove})
    if set(names) & set(removed):
        raise ValueError("forward() cannot both set and remove a header")
    if names:
        changes["set"] = names
    if removed:
        changes["remove"] = removed
    marker = "1"
    if changes:
        import json  # only a forward with changes pays for it

        marker = json.dumps(changes, separators=(",", ":"))  # ASCII: a valid header value
    # The headers to set travel as the response's own, checked as any response
    # header is; the marker names them, so that headers a middleware adds to every
    # response are not taken for changes.
    return HttpResponse.empty(204, {**to_set, FORWARD_HEADER: marker})


def _has_control(text: str) -> bool:
    # isprintable() is False for every control character (and for some harmless
    # non-ASCII ones): only then is each character looked at.
    return not text.isprintable() and any(c < " " or c == "\x7f" for c in text)
