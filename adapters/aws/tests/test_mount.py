"""A FastAPI app mounted on a polyserve app, answered through the Lambda handler."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request

import polyserve_aws
from polyserve import App

from .support import FakeLambdaContext, load


def _handler() -> Any:
    api = FastAPI()

    @api.post("/pets/{name}")
    async def create(
        name: str, request: Request, tag: Annotated[list[str], Query()]
    ) -> dict[str, Any]:
        return {
            "name": name,
            "tags": tag,
            "body": await request.json(),
            "cookies": dict(request.cookies),
        }

    app = App("pets")
    app.mount("/", api)
    return polyserve_aws.handler(app)


def test_http_api_requests_reach_the_mounted_app() -> None:
    handler = _handler()
    result = handler(load("apigw-http-post.json"), FakeLambdaContext())
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {
        "name": "new arrivals",
        "tags": ["a", "b&c"],
        "body": {"name": "Tom", "species": "cat"},
        "cookies": {"session": "abc", "theme": "dark"},
    }


def test_a_path_the_mounted_app_lacks_is_its_own_404() -> None:
    event = load("apigw-http-post.json")
    event["rawPath"] = "/nothing"
    event["requestContext"]["http"]["path"] = "/nothing"
    result = _handler()(event, FakeLambdaContext())
    assert result["statusCode"] == 404
    assert json.loads(result["body"]) == {"detail": "Not Found"}
