"""AWS Lambda: API Gateway REST and HTTP APIs, Function URLs, ALB and VPC Lattice targets,
Lambda@Edge, SQS queues.

Each codec builds the event the AWS service sends, passes it through JSON (as the Lambda
service does) to ``polyserve_aws.handler``, and reads the response document back as a
client would see it. What a format cannot carry is in ``expected`` and
``expected_response``, and in the "Known limits" of ``docs/providers/aws.md``:

* HTTP API and Function URLs join the values of a repeated request header with ``,``,
  and answer a repeated response header (but ``Set-Cookie``) as one ``", "``-joined value.
* An ALB target group without multi-value headers keeps the last value of a repeated
  request header or query key, joins repeated response headers with ``", "`` and sends
  only the last ``Set-Cookie``.
* ALB events carry no client address or request id: the address travels in
  ``X-Forwarded-For`` (which the handler sees), the id is Lambda's request id.
* SQS bodies are strings: bytes that are not UTF-8 arrive with replacement characters.
* HTTP APIs decode the path before they build the event (``rawPath`` is decoded); REST
  APIs, Function URLs and ALBs pass it as the client encoded it.
* VPC Lattice events carry no client address or request id (as ALB events); v1 keeps
  one value per header and query key, and the response one value per header.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from adapters.aws.tests.support import FakeLambdaContext

import polyserve_aws
from polyserve import Headers, HttpRequest, Message, QueryParams
from polyserve_aws.testing import build
from polyserve_testkit.codecs import MessageCodec, NativeResponse, RawHttpCodec

if TYPE_CHECKING:
    from polyserve import App

__all__ = ["HTTP_CODECS", "MESSAGE_CODECS", "BatchItemFailedError"]

_ACCOUNT = "123456789012"


class BatchItemFailedError(Exception):
    """The SQS batch response listed the message as failed: Lambda would redeliver it."""


def _wire(value: Any) -> Any:
    """``value`` as the other side of a JSON hop sees it."""
    return json.loads(json.dumps(value))


def _invoke(
    app: App, event: dict[str, Any], request_id: str, names: dict[str, str] | None = None
) -> Any:
    handler = polyserve_aws.handler(app, names=names)
    return _wire(handler(_wire(event), FakeLambdaContext(request_id)))


def _body(request: HttpRequest) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    if request.content_type == "application/octet-stream":
        return base64.b64encode(request.body).decode(), True
    return request.body.decode(), False


def _last(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return dict(pairs)


def _joined(headers: Headers, sep: str, *, keep: str = "") -> Headers:
    pairs: list[tuple[str, str]] = []
    for name, values in headers.to_multi_dict().items():
        if name == keep:
            pairs.extend((name, v) for v in values)
        else:
            pairs.append((name, sep.join(values)))
    return Headers(pairs)


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def _raw_query(query: str) -> list[tuple[str, str]]:
    """A query string's pairs as the client encoded them (an ALB passes them so)."""
    return [(k, v) for k, _, v in (p.partition("=") for p in query.split("&") if p)]


def _response_body(out: dict[str, Any]) -> bytes:
    body = out.get("body") or ""
    return base64.b64decode(body) if out.get("isBase64Encoded") else body.encode()


@dataclasses.dataclass
class _RestApi:
    """API Gateway REST API, Lambda proxy integration (payload 1.0)."""

    name: str = "aws_rest_v1"

    def expected(self, request: HttpRequest) -> HttpRequest:
        return request

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        return response

    decodes_path = False

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        path, _, query = target.partition("?")
        params = QueryParams.from_string(query).multi_items()  # API Gateway decodes them
        event = {
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": method,
            "headers": _last(headers) or None,
            "multiValueHeaders": _multi(headers) or None,
            "queryStringParameters": _last(params) or None,
            "multiValueQueryStringParameters": _multi(params) or None,
            "requestContext": {
                "accountId": _ACCOUNT,
                "apiId": "a1b2c3",
                "httpMethod": method,
                "identity": {"sourceIp": "203.0.113.7"},
                "path": "/prod" + path,
                "requestId": "raw-1",
                "stage": "prod",
            },
            "body": None,
            "isBase64Encoded": False,
        }
        return self._answer(_invoke(app, event, "lambda-raw"))

    @staticmethod
    def _answer(out: dict[str, Any]) -> NativeResponse:
        headers = {**{k: [v] for k, v in out["headers"].items()}, **out["multiValueHeaders"]}
        pairs = [(k, v) for k, values in headers.items() for v in values]
        return NativeResponse(out["statusCode"], Headers(pairs), _response_body(out))

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        body, is_base64 = _body(request)
        path = quote(request.path, safe="/")
        query = request.query.to_multi_dict()
        event = {
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": request.method,
            "headers": _last(request.headers.multi_items()) or None,
            "multiValueHeaders": request.headers.to_multi_dict() or None,
            "queryStringParameters": _last(request.query.multi_items()) or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": {"proxy": path[1:]},
            "stageVariables": None,
            "requestContext": {
                "accountId": _ACCOUNT,
                "apiId": "a1b2c3",
                "httpMethod": request.method,
                "identity": {"sourceIp": request.client},
                "path": "/prod" + path,
                "requestId": request.request_id,
                "resourcePath": "/{proxy+}",
                "stage": "prod",
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }
        return self._answer(_invoke(app, event, "lambda-" + request.request_id))


@dataclasses.dataclass
class _PayloadV2:
    """API Gateway HTTP API (payload 2.0), or a Lambda Function URL (the same format)."""

    name: str
    domain: str

    @property
    def raw_path(self) -> bool:
        """Whether ``rawPath`` is the path as sent: a Function URL's; an HTTP API decodes it."""
        return ".lambda-url." in self.domain

    @property
    def decodes_path(self) -> bool:
        return not self.raw_path

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        path, _, query = target.partition("?")
        joined: dict[str, str] = {}
        for name, value in headers:  # payload 2.0: lower-case names, repeats joined
            key = name.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        raw_path = path if self.raw_path else unquote(path)
        event = self._event(method, raw_path, query, joined, "203.0.113.7", "raw-1")
        return self._answer(_invoke(app, event, "lambda-raw"))

    def _event(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: dict[str, str],
        source_ip: str | None,
        request_id: str,
    ) -> dict[str, Any]:
        return build(
            "http_api", method=method, path=raw_path, query=raw_query, headers=headers,
            source_ip=source_ip, request_id=request_id, domain=self.domain,
        )  # fmt: skip

    @staticmethod
    def _answer(out: dict[str, Any]) -> NativeResponse:
        pairs = list(out["headers"].items())
        pairs += [("set-cookie", c) for c in out.get("cookies", [])]
        return NativeResponse(out["statusCode"], Headers(pairs), _response_body(out))

    def expected(self, request: HttpRequest) -> HttpRequest:
        headers = [(k, v) for k, v in _joined(request.headers, ",").multi_items() if k != "cookie"]
        cookies = _cookies(request)
        if cookies:
            headers.append(("cookie", "; ".join(cookies)))
        return dataclasses.replace(request, headers=Headers(headers))

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        return dataclasses.replace(
            response, headers=_joined(response.headers, ", ", keep="set-cookie")
        )

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        body, is_base64 = _body(request)
        headers: dict[str, str] = {}
        for name, value in request.headers.multi_items():
            if name != "cookie":
                headers[name] = f"{headers[name]},{value}" if name in headers else value
        raw_path = quote(request.path, safe="/") if self.raw_path else request.path
        event = self._event(
            request.method, raw_path, request.query.to_string(), headers, request.client,
            request.request_id,
        )  # fmt: skip
        event["isBase64Encoded"] = is_base64
        cookies = _cookies(request)
        if cookies:
            event["cookies"] = cookies
        if body is not None:
            event["body"] = body
        return self._answer(_invoke(app, event, "lambda-" + request.request_id))


def _cookies(request: HttpRequest) -> list[str]:
    """The ``cookies`` array AWS builds from the request's ``Cookie`` headers."""
    parts = (p.strip() for h in request.headers.get_all("cookie") for p in h.split(";"))
    return [p for p in parts if p]


@dataclasses.dataclass
class _Alb:
    """An ALB target group, with or without multi-value headers."""

    name: str
    multi_value: bool

    def expected(self, request: HttpRequest) -> HttpRequest:
        headers = request.headers.multi_items()
        query = request.query.multi_items()
        if not self.multi_value:
            headers = list(_last(headers).items())
            query = list(_last(query).items())
        if request.client:
            headers.append(("x-forwarded-for", request.client))
        return dataclasses.replace(
            request,
            headers=Headers(headers),
            query=QueryParams(query),
            request_id=self._id(request),
        )

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        if self.multi_value:
            return response
        headers = _joined(response.headers, ", ", keep="set-cookie").multi_items()
        cookies = response.headers.get_all("set-cookie")
        headers = [(k, v) for k, v in headers if k != "set-cookie"] + [
            ("set-cookie", c) for c in cookies[-1:]
        ]
        return dataclasses.replace(response, headers=Headers(headers))

    @staticmethod
    def _id(request: HttpRequest) -> str:
        return "lambda-" + request.request_id

    decodes_path = False

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        path, _, query = target.partition("?")
        event = self._event(method, path, headers, _raw_query(query), None, False)
        return self._answer(_invoke(app, event, "lambda-raw"))

    def _event(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        query: list[tuple[str, str]],
        body: str | None,
        is_base64: bool,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "requestContext": {
                "elb": {
                    "targetGroupArn": f"arn:aws:elasticloadbalancing:us-east-1:{_ACCOUNT}"
                    ":targetgroup/portability/0123456789abcdef"
                }
            },
            "httpMethod": method,
            "path": path,
            "body": body or "",
            "isBase64Encoded": is_base64,
        }
        if self.multi_value:
            event["multiValueHeaders"] = _multi(headers)
            event["multiValueQueryStringParameters"] = _multi(query)
        else:
            event["headers"] = _last(headers)
            event["queryStringParameters"] = _last(query)
        return event

    def _answer(self, out: dict[str, Any]) -> NativeResponse:
        assert out["statusDescription"].startswith(f"{out['statusCode']} ")
        if self.multi_value:
            assert "headers" not in out
            pairs = [(k, v) for k, values in out["multiValueHeaders"].items() for v in values]
        else:
            assert "multiValueHeaders" not in out
            pairs = list(out["headers"].items())
        return NativeResponse(out["statusCode"], Headers(pairs), _response_body(out))

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        body, is_base64 = _body(request)
        # The load balancer passes the query as the client encoded it.
        query = [(quote(k, safe=""), quote(v, safe="")) for k, v in request.query.multi_items()]
        headers = request.headers.multi_items()
        if request.client:
            headers.append(("x-forwarded-for", request.client))
        event = self._event(
            request.method, quote(request.path, safe="/"), headers, query, body, is_base64
        )
        return self._answer(_invoke(app, event, self._id(request)))


@dataclasses.dataclass
class _Sqs:
    """An SQS queue, standard or FIFO, through an event source mapping."""

    name: str
    fifo: bool

    def expected(self, message: Message) -> Message:
        return dataclasses.replace(
            message,
            body=message.body.decode("utf-8", errors="replace").encode(),
            group_key="group-1" if self.fifo else None,
        )

    def call(self, app: App, message: Message) -> None:
        assert message.enqueued_at is not None
        queue = message.source + (".fifo" if self.fifo else "")  # ``names`` maps it back
        event = build(
            "sqs_fifo" if self.fifo else "sqs",
            body=message.body.decode("utf-8", errors="replace"),
            queue=queue,
            message_id=message.id,
            attempt=message.attempt,
            attributes=dict(message.attributes),
            sent_timestamp=int(message.enqueued_at.timestamp() * 1000),
        )
        names = {queue: message.source}
        out = _invoke(app, event, "lambda-" + message.id, names)
        if out["batchItemFailures"]:
            raise BatchItemFailedError(f"message {message.id} reported failed: {out}")


@dataclasses.dataclass
class _Lattice:
    """A VPC Lattice target group, event structure v1 or v2."""

    name: str
    v2: bool

    decodes_path = False

    def expected(self, request: HttpRequest) -> HttpRequest:
        headers = request.headers.multi_items()
        query = request.query.multi_items()
        if not self.v2:
            headers = list(_last(headers).items())
            query = list(_last(query).items())
        if request.client:
            headers.append(("x-forwarded-for", request.client))
        return dataclasses.replace(
            request,
            headers=Headers(headers),
            query=QueryParams(query),
            request_id="lambda-" + request.request_id,
        )

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        headers = _joined(response.headers, ", ", keep="set-cookie").multi_items()
        cookies = response.headers.get_all("set-cookie")
        headers = [(k, v) for k, v in headers if k != "set-cookie"] + [
            ("set-cookie", c) for c in cookies[-1:]
        ]
        return dataclasses.replace(response, headers=Headers(headers))

    def _event(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        query: list[tuple[str, str]],
        body: str | None,
        is_base64: bool,
    ) -> dict[str, Any]:
        if not self.v2:
            return {
                "raw_path": path, "method": method, "headers": _last(headers),
                "query_string_parameters": _last(query), "body": body or "",
                "is_base64_encoded": is_base64,
            }  # fmt: skip
        return {
            "version": "2.0", "path": path, "method": method, "headers": _multi(headers),
            "queryStringParameters": _multi(query), "body": body or "",
            "isBase64Encoded": is_base64,
            "requestContext": {
                "serviceNetworkArn": f"arn:aws:vpc-lattice:us-east-1:{_ACCOUNT}:servicenetwork/sn-1",
                "targetGroupArn": f"arn:aws:vpc-lattice:us-east-1:{_ACCOUNT}:targetgroup/tg-1",
                "identity": {}, "region": "us-east-1", "timeEpoch": "1714557600000000",
            },
        }  # fmt: skip

    @staticmethod
    def _answer(out: dict[str, Any]) -> NativeResponse:
        assert out["statusDescription"].startswith(f"{out['statusCode']} ")
        return NativeResponse(
            out["statusCode"], Headers(list(out["headers"].items())), _response_body(out)
        )

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        path, _, query = target.partition("?")
        event = self._event(method, path, headers, _raw_query(query), None, False)
        if not self.v2:
            event["raw_path"] = target
            del event["query_string_parameters"]
        return self._answer(_invoke(app, event, "lambda-raw"))

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        body, is_base64 = _body(request)
        headers = request.headers.multi_items()
        if request.client:
            headers.append(("x-forwarded-for", request.client))
        event = self._event(
            request.method, quote(request.path, safe="/"), headers,
            request.query.multi_items(), body, is_base64,
        )  # fmt: skip
        return self._answer(_invoke(app, event, "lambda-" + request.request_id))


@dataclasses.dataclass
class _Edge:
    """Lambda@Edge on a CloudFront viewer request, the body included."""

    name: str = "aws_lambda_edge"

    decodes_path = False

    def expected(self, request: HttpRequest) -> HttpRequest:
        return request

    def expected_response(self, response: NativeResponse) -> NativeResponse:
        return response

    @staticmethod
    def _event(
        method: str,
        uri: str,
        query: str,
        headers: list[tuple[str, str]],
        body: str | None,
        is_base64: bool,
        client: str | None,
        request_id: str,
    ) -> dict[str, Any]:
        cf_headers: dict[str, list[dict[str, str]]] = {}
        for name, value in headers:
            cf_headers.setdefault(name.lower(), []).append({"key": name, "value": value})
        request: dict[str, Any] = {
            "method": method, "uri": uri, "querystring": query, "headers": cf_headers,
        }  # fmt: skip
        if client is not None:
            request["clientIp"] = client
        if body is not None:
            request["body"] = {
                "action": "read-only", "inputTruncated": False, "data": body,
                "encoding": "base64" if is_base64 else "text",
            }  # fmt: skip
        config = {
            "distributionDomainName": "d1example.cloudfront.net", "distributionId": "E1EXAMPLE",
            "eventType": "viewer-request", "requestId": request_id,
        }  # fmt: skip
        return {"Records": [{"cf": {"config": config, "request": request}}]}

    @staticmethod
    def _answer(out: dict[str, Any]) -> NativeResponse:
        pairs = [
            (e["key"].lower(), e["value"]) for entries in out["headers"].values() for e in entries
        ]
        body = out.get("body") or ""
        data = base64.b64decode(body) if out.get("bodyEncoding") == "base64" else body.encode()
        return NativeResponse(int(out["status"]), Headers(pairs), data)

    def call_raw(
        self, app: App, method: str, target: str, headers: list[tuple[str, str]]
    ) -> NativeResponse:
        path, _, query = target.partition("?")
        event = self._event(method, path, query, headers, None, False, "198.51.100.1", "raw-1")
        return self._answer(_invoke(app, event, "lambda-raw"))

    def call(self, app: App, request: HttpRequest) -> NativeResponse:
        body, is_base64 = _body(request)
        event = self._event(
            request.method, quote(request.path, safe="/"), request.query.to_string(),
            request.headers.multi_items(), body, is_base64, request.client, request.request_id,
        )  # fmt: skip
        return self._answer(_invoke(app, event, "lambda-" + request.request_id))


HTTP_CODECS: list[RawHttpCodec] = [
    _RestApi(),
    _PayloadV2("aws_http_v2", "p8w2m1.execute-api.us-east-1.amazonaws.com"),
    _PayloadV2("aws_function_url", "x7a2b9c4d5e6f.lambda-url.us-east-1.on.aws"),
    _Alb("aws_alb_single", multi_value=False),
    _Alb("aws_alb_multi", multi_value=True),
    _Lattice("aws_lattice_v1", v2=False),
    _Lattice("aws_lattice_v2", v2=True),
    _Edge(),
]

MESSAGE_CODECS: list[MessageCodec] = [
    _Sqs("aws_sqs", fifo=False),
    _Sqs("aws_sqs_fifo", fifo=True),
]
