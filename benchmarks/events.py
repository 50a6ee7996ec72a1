"""Lambda events as API Gateway and SQS send them, built here for the benchmarks.

The shapes follow what the services deliver to a function serving a whole API (a
REST API's ``ANY /{proxy+}`` resource, an HTTP API's ``$default`` route): fifteen
request headers from a browser behind CloudFront, REST's ``multiValueHeaders`` beside
``headers``, HTTP API's cookies in their own list, a full ``requestContext`` with an
authorizer's output, and SQS records with their attributes and message attributes.
Every value is made up; ids are derived from a counter so that runs are repeatable.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

__all__ = [
    "ACCOUNT",
    "FAILING",
    "QUEUE_ARN",
    "http_v2",
    "order",
    "rest_v1",
    "sqs_batch",
]

ACCOUNT = "123456789012"
REGION = "eu-west-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
API_ID = "k3x9q2w7ab"
DOMAIN = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
SOURCE_IP = "203.0.113.24"
# A bearer token's shape (three base64url parts); it signs nothing.
TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlbmNoIn0."
    "eyJzdWIiOiJ1c2VyLTcyMTQiLCJzY29wZSI6InBldHMifQ."
    "c2lnbmF0dXJlLW9mLTY0LWJ5dGVzLW1hZGUtdXAtZm9yLXRoZS1iZW5jaG1hcmstb25seQ"
)
REQUEST_TIME = "14/Mar/2025:09:26:53 +0000"
REQUEST_EPOCH_MS = 1741944413000

# Records failing in the SQS batch: the handlers reject orders with no items.
FAILING = (3, 7)


def _uuid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.md5(seed.encode()).digest(), version=4))


def _browser_headers(body: str | None) -> list[tuple[str, str]]:
    """Fifteen headers, as a browser behind CloudFront sends them, in wire case."""
    headers = [
        ("Accept", "application/json, text/plain, */*"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Accept-Language", "en-GB,en;q=0.9,fr;q=0.8"),
        ("Authorization", f"Bearer {TOKEN}"),
        ("CloudFront-Forwarded-Proto", "https"),
        ("CloudFront-Viewer-Country", "GB"),
        ("Host", DOMAIN),
        ("Origin", "https://app.example.com"),
        ("Referer", "https://app.example.com/pets"),
        ("User-Agent", USER_AGENT),
        ("Via", "2.0 5e1c0e7d1a2b3c4d5e6f7a8b9c0d1e2f.cloudfront.net (CloudFront)"),
        ("X-Amz-Cf-Id", "Xz1yQ0Lg3k9w2v7u6t5s4r3q2p1o0n9m8l7k6j5i4h3g2f1e0d=="),
        ("X-Amzn-Trace-Id", "Root=1-65f2c1a5-3b7c9d1e2f4a6b8c0d1e2f3a"),
        ("X-Forwarded-For", f"{SOURCE_IP}, 130.176.98.71"),
        ("X-Forwarded-Proto", "https"),
    ]
    if body is not None:
        # A request with a body: its type and length replace two of the above.
        headers = [h for h in headers if h[0] not in ("Referer", "CloudFront-Viewer-Country")]
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return headers


def rest_v1(method: str, path: str, *, body: str | None = None, seed: int = 0) -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) event for a ``/{proxy+}`` resource."""
    headers = _browser_headers(body)
    request_id = _uuid(f"rest-{seed}")
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {name: [value] for name, value in headers},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "x1y2z3",
            "authorizer": {
                "principalId": "user-7214",
                "integrationLatency": 14,
                "tenant": "acme",
                "scope": "pets",
            },
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "extendedRequestId": "U2xNbHkZDoEFqvA=",
            "requestTime": REQUEST_TIME,
            "path": f"/prod{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": API_ID,
            "requestTimeEpoch": REQUEST_EPOCH_MS,
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": SOURCE_IP,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": USER_AGENT,
                "user": None,
            },
            "domainName": DOMAIN,
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def http_v2(method: str, path: str, *, body: str | None = None, seed: int = 0) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for the ``$default`` route, with cookies."""
    request_id = _uuid(f"http-{seed}")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "cookies": [
            "session=4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f",
            "theme=dark",
            "_ga=GA1.1.1234567890.1741940000",
        ],
        # Payload 2.0 gives header names in lower case, and repeated ones joined by commas.
        "headers": {name.lower(): value for name, value in _browser_headers(body)},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "authorizer": {
                "jwt": {
                    "claims": {
                        "sub": "user-7214",
                        "iss": "https://auth.example.com/",
                        "aud": "pets-api",
                        "exp": "1741948013",
                        "iat": "1741944413",
                        "scope": "pets",
                    },
                    "scopes": ["pets"],
                }
            },
            "domainName": DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": USER_AGENT,
            },
            "requestId": request_id.replace("-", "")[:16] + "=",
            "routeKey": "$default",
            "stage": "$default",
            "time": REQUEST_TIME,
            "timeEpoch": REQUEST_EPOCH_MS,
        },
        **({"body": body} if body is not None else {}),
        "isBase64Encoded": False,
    }


def order(index: int, *, items: int = 2) -> dict[str, Any]:
    """An order as a shop's checkout would queue it."""
    return {
        "order_id": f"ord-{index:06d}",
        "customer_id": "cus-7214",
        "currency": "EUR",
        "items": [
            {"sku": f"SKU-{index * 10 + n:05d}", "quantity": n + 1, "unit_price": "12.50"}
            for n in range(items)
        ],
        "placed_at": "2025-03-14T09:26:53Z",
    }


def sqs_batch(size: int = 10, failing: tuple[int, ...] = FAILING) -> dict[str, Any]:
    """A batch of SQS records holding orders; those at ``failing`` have no items."""
    records = []
    for index in range(size):
        body = json.dumps(order(index, items=0 if index in failing else 2))
        attributes = {
            "tenant": {
                "stringValue": "acme",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            },
            "correlation-id": {
                "stringValue": _uuid(f"corr-{index}"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            },
        }
        sent = REQUEST_EPOCH_MS + index * 37
        records.append(
            {
                "messageId": _uuid(f"msg-{index}"),
                "receiptHandle": "AQEB" + hashlib.sha512(f"rh-{index}".encode()).hexdigest() * 2,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "AWSTraceHeader": "Root=1-65f2c1a5-3b7c9d1e2f4a6b8c0d1e2f3a;Sampled=0",
                    "SentTimestamp": str(sent),
                    "SenderId": "AROAEXAMPLEROLEID:checkout",
                    "ApproximateFirstReceiveTimestamp": str(sent + 12),
                },
                "messageAttributes": attributes,
                "md5OfMessageAttributes": hashlib.md5(json.dumps(attributes).encode()).hexdigest(),
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}
