"""Lambda@Edge: let CloudFront carry on with the request or response it had.

A route answering a Lambda@Edge event returns a response that CloudFront sends
instead of going on (a request event) or instead of the origin's (a response
event). ``forward()`` is the other choice: the route returns it, and the function
hands CloudFront back the request (viewer and origin requests: on to the cache or
the origin) or the response (viewer and origin responses) unchanged::

    from polyserve_aws import edge

    @app.get("/{rest:path}")
    def everything_else(rest: str) -> HttpResponse:
        return edge.forward()

Outside Lambda@Edge (another adapter, a test client) it is an empty 204 response.
"""

from __future__ import annotations

from polyserve.events import HttpResponse

__all__ = ["FORWARD_HEADER", "forward"]

FORWARD_HEADER = "x-polyserve-edge-forward"
"""The header that marks a ``forward()`` response; never sent to a client by Lambda@Edge."""


def forward() -> HttpResponse:
    """The answer that lets CloudFront go on with the event's own request or response."""
    return HttpResponse.empty(204, {FORWARD_HEADER: "1"})
