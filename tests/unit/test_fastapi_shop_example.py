"""examples/fastapi-shop answers through each adapter's entry: FastAPI HTTP and polyserve events."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLE = Path(__file__).parents[2] / "examples" / "fastapi-shop"
SAMPLES = Path(__file__).parents[2] / "adapters" / "aws" / "tests" / "events"


class _LambdaContext:
    aws_request_id = "req-1"
    function_name = "shop"
    invoked_function_arn = "arn:aws:lambda:us-east-1:1:function:shop"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(scope="module")
def shop() -> Iterator[Any]:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from fastapi_shop import app

        yield app
        app.app.close()
    finally:
        sys.path.remove(str(EXAMPLE))


def test_lambda_http_and_queue(shop: Any) -> None:
    import polyserve_aws

    handler = polyserve_aws.handler(shop.app)
    event = copy.deepcopy(json.loads((SAMPLES / "apigw-http-post.json").read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/stock/tea"
    event["requestContext"]["http"]["method"] = "GET"
    event["rawQueryString"], event["body"] = "", None
    result = handler(event, _LambdaContext())
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"sku": "tea", "left": 10}
    sqs = json.loads((SAMPLES / "sqs-standard.json").read_text())
    for record in sqs["Records"]:
        record["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:orders"
        record["body"] = json.dumps({"sku": "mug", "quantity": 1})
    assert handler(sqs, _LambdaContext()) == {"batchItemFailures": []}
    assert shop.SHIPPED[-1] == {"sku": "mug", "quantity": 1}


def test_functions_framework_http(shop: Any) -> None:
    import flask

    import polyserve_gcp

    with flask.Flask(__name__).test_request_context("/orders", method="POST", json={"sku": "tea"}):
        native = polyserve_gcp.http(shop.app)(flask.request)
    assert native.status_code == 202
    assert json.loads(native.get_data())["accepted"] == "tea"


def test_azure_http(shop: Any) -> None:
    import azure.functions as func
    from adapters.azure.tests.support import InvocationContext

    import polyserve_azure

    functions = {
        str(f.get_function_name()): f
        for f in polyserve_azure.function_app(shop.app).get_functions()
    }
    request = func.HttpRequest("GET", "https://h/api/stock/nothing", body=b"")
    native = functions["http"].get_user_function()(request, InvocationContext("inv-1"))
    assert native.status_code == 404
    assert json.loads(native.get_body()) == {"detail": "no such item nothing"}


def test_worker_fetch(shop: Any) -> None:
    import polyserve_cloudflare
    from polyserve_cloudflare.testing import FakeExecutionContext, FakeRequest, FakeRuntime

    worker = polyserve_cloudflare.entrypoint(shop.app, runtime=FakeRuntime())(
        FakeExecutionContext(), {}
    )
    response = asyncio.run(worker.fetch(FakeRequest("GET", "https://h/openapi.json")))
    assert response.status == 200
    assert "/orders" in json.loads(response.content)["paths"]
