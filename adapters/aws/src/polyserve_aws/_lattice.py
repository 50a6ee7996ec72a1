"""Amazon VPC Lattice requests to a Lambda target group, event structures v1 and v2.

Recognised by shape: v2 has ``"version": "2.0"`` with ``path``, ``method`` and a
``requestContext`` naming the ``serviceNetworkArn`` or ``targetGroupArn``; v1 has
``raw_path`` and ``method`` (snake-case fields, no version).

v2 headers and query parameters come as lists of values (a single string is taken
too); v1 sends one string each. v1's ``raw_path`` may carry the query string,
which is then parsed from it when ``query_string_parameters`` is absent. The path
is decoded by ``polyserve.events.decode_path`` (a malformed escape, an encoded
slash or a path that is not UTF-8 is a 400 ``invalid_path``). The client is the
last entry of ``X-Forwarded-For``; the request id is Lambda's.

The answer is Lattice's response document, as an ALB's single-value one:
``statusCode``, ``statusDescription``, ``headers`` (repeated values joined with
``", "``, only the last ``Set-Cookie``), ``body`` and ``isBase64Encoded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.adapter import as_object, decode_base64, response_body, text, translating
from polyserve.errors import MalformedEventError
from polyserve.events import Headers, HttpRequest, QueryParams, decode_path
from polyserve_aws._http import pairs

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.context import Context
    from polyserve.events import HttpResponse

__all__ = ["is_http", "is_v2", "matches", "to_event", "to_native"]

is_http = True

_WHAT = "VPC Lattice event"


def is_v2(raw: dict[str, Any]) -> bool:
    """True for the v2 event structure."""
    context = raw.get("requestContext")
    return (
        raw.get("version") == "2.0"
        and "path" in raw
        and "method" in raw
        and isinstance(context, dict)
        and ("serviceNetworkArn" in context or "targetGroupArn" in context)
    )


def matches(raw: dict[str, Any]) -> bool:
    """True for a VPC Lattice request, v1 or v2."""
    return is_v2(raw) or ("raw_path" in raw and "method" in raw)


def _lists(value: Any, field: str) -> list[tuple[str, str]]:
    # v2 maps each name to a list of values; a single string is taken as one value.
    if value is None:
        return []
    out: list[tuple[str, str]] = []
    for name, items in as_object(value, _WHAT, field).items():
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, str):
                raise MalformedEventError(f"{_WHAT} {field} value of {name!r} must be strings")
            out.append((name, item))
    return out


def _body(raw: dict[str, Any], v2: bool) -> bytes:
    body = raw.get("body")
    if body is None or body == "":
        return b""
    if raw.get("isBase64Encoded" if v2 else "is_base64_encoded") is True:
        return decode_base64(body, f"{_WHAT} body")
    if not isinstance(body, str):
        raise MalformedEventError(f"{_WHAT} body must be a string, got {type(body).__name__}")
    try:
        return body.encode()
    except UnicodeEncodeError:
        raise MalformedEventError(f"{_WHAT} body is not valid Unicode") from None


def to_event(raw: dict[str, Any], context: Context, names: Mapping[str, str]) -> HttpRequest:
    """The ``HttpRequest`` in a Lattice event.

    Raises:
        MalformedEventError: a field is missing or has the wrong type, or the body is
            not valid base64 (code ``invalid_base64``): answered with a 400.
    """
    with translating(_WHAT):
        v2 = is_v2(raw)
        if v2:
            path = text(raw, "path", _WHAT)
            headers = _lists(raw.get("headers"), "headers")
            query = QueryParams(_lists(raw.get("queryStringParameters"), "queryStringParameters"))
        else:
            path, _, raw_query = text(raw, "raw_path", _WHAT).partition("?")
            headers = pairs(raw.get("headers"), _WHAT, "headers")
            params = raw.get("query_string_parameters")
            if params is None and raw_query:
                query = QueryParams.from_string(raw_query)
            else:
                query = QueryParams(pairs(params, _WHAT, "query_string_parameters"))
        client = None
        for name, value in headers:
            if name.lower() == "x-forwarded-for":
                client = value.rsplit(",", 1)[-1].strip() or None
        method = text(raw, "method", _WHAT)
        if not method.isalpha():
            raise MalformedEventError(f"{_WHAT} method is not an HTTP method: {method[:20]!r}")
        return HttpRequest(
            method=method.upper(),
            path=decode_path(path),
            query=query,
            headers=Headers(headers),
            body=_body(raw, v2),
            client=client,
            request_id=context.invocation_id,
            raw=raw,
        )


def to_native(response: HttpResponse, raw: dict[str, Any], context: Context) -> dict[str, Any]:
    """Lattice's response document."""
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    body, is_base64 = response_body(response)
    headers: dict[str, str] = {}
    for name, values in response.headers.to_multi_dict().items():
        if name == "set-cookie" and len(values) > 1:
            context.logger.warning(
                "VPC Lattice responses carry one Set-Cookie; the others were dropped",
                dropped=len(values) - 1,
            )
            headers[name] = values[-1]
        else:
            headers[name] = ", ".join(values)
    return {
        "statusCode": response.status,
        "statusDescription": f"{response.status} {phrase}",
        "headers": headers,
        "body": body,
        "isBase64Encoded": is_base64,
    }
