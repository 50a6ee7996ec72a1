"""A real FastAPI app answers the same through every provider's entry as under uvicorn.

Hypothesis generates requests (path and query parameters, JSON and form bodies,
cookies, redirects, HTTPException, validation errors); each goes to uvicorn over a
real socket and, as each provider's native request, to its public entry:
``polyserve_aws.handler`` (API Gateway HTTP API), ``polyserve_gcp.http`` (a Werkzeug
request), the HTTP function ``polyserve_azure.function_app`` generates, the Worker
of ``polyserve_cloudflare.entrypoint`` (in-process, with its ``testing`` stand-ins
for the JavaScript objects, as Pyodide is too slow for a property test), and
uvicorn serving the polyserve ``App`` itself (``polyserve serve``).
Status, body and headers must be equal, except the headers a server adds itself
(``date``, ``server``, ``content-length``), which API Gateway sets on its side.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Form, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import polyserve_aws
from polyserve import App
from polyserve_testkit.servers import free_ports

if TYPE_CHECKING:
    from collections.abc import Iterator

SAMPLE = Path(__file__).parents[2] / "adapters/aws/tests/events/apigw-http-post.json"
SERVER_HEADERS = {"date", "server", "content-length"}


class Pet(BaseModel):
    name: str
    age: int = 0


def _api() -> FastAPI:
    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int, q: Annotated[list[str], Query()] = []) -> dict[str, Any]:  # noqa: B006 - FastAPI copies defaults
        if item_id == 404:
            raise HTTPException(404, "no such item", headers={"x-why": "missing"})
        return {"id": item_id, "q": q}

    @api.post("/pets", status_code=201)
    async def pets(pet: Pet) -> Pet:
        return pet

    @api.post("/form")
    async def form(name: Annotated[str, Form()]) -> dict[str, str]:
        return {"name": name}

    @api.get("/cookies")
    async def cookies(request: Request, response: Response) -> dict[str, str]:
        response.set_cookie("seen", "yes")
        return dict(request.cookies)

    @api.get("/go")
    async def go() -> RedirectResponse:
        return RedirectResponse("/items/1", status_code=307)

    return api


def _start_uvicorn(asgi: Any) -> tuple[str, Any]:
    port = free_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(asgi, port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(5)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture(scope="module")
def uvicorn_url() -> Iterator[str]:
    url, stop = _start_uvicorn(_api())
    yield url
    stop()


class _Ctx:
    aws_request_id = "req-1"
    function_name = "fn"
    invoked_function_arn = "arn:aws:lambda:us-east-1:1:function:fn"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


words = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=8)
requests: st.SearchStrategy[Any] = st.one_of(
    st.tuples(st.just("GET"), st.builds(lambda i: f"/items/{i}", st.sampled_from(["1", "404", "x", "77"])),
              st.lists(st.tuples(st.just("q"), words), max_size=3), st.none(), st.none()),
    st.tuples(st.just("POST"), st.just("/pets"), st.just([]),
              st.builds(lambda n, a: json.dumps({"name": n, "age": a}).encode(), words,
                        st.one_of(st.integers(0, 99), words)),
              st.just("application/json")),
    st.tuples(st.just("POST"), st.just("/form"), st.just([]),
              st.builds(lambda n: urlencode({"name": n}).encode(), words),
              st.just("application/x-www-form-urlencoded")),
    st.tuples(st.just("GET"), st.just("/cookies"), st.just([]), st.none(), st.none()),
    st.tuples(st.just("GET"), st.just("/go"), st.just([]), st.none(), st.none()),
)  # fmt: skip
cookie_jars = st.dictionaries(st.sampled_from(["a", "b", "session"]), words, max_size=2)


def _event(method: str, path: str, query: list[tuple[str, str]], body: bytes | None,
           content_type: str | None, cookies: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    event: dict[str, Any] = copy.deepcopy(json.loads(SAMPLE.read_text()))
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = urlencode(query, quote_via=quote)
    event.pop("queryStringParameters", None)
    event["cookies"] = [f"{k}={v}" for k, v in cookies.items()]
    headers = {"host": "testserver", "x-forwarded-proto": "http"}
    if content_type:
        headers["content-type"] = content_type
    event["headers"] = headers
    event["body"] = base64.b64encode(body).decode() if body else None
    event["isBase64Encoded"] = bool(body)
    return event


def _lambda_headers(result: dict[str, Any]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {k.lower(): [v] for k, v in result.get("headers", {}).items()}
    if result.get("cookies"):
        headers["set-cookie"] = list(result["cookies"])
    return headers


def _via_lambda(method: str, path: str, query: list[tuple[str, str]], body: bytes | None,
               headers: dict[str, str], cookies: dict[str, str]) -> tuple[int, dict[str, list[str]], bytes]:  # fmt: skip
    result = _LAMBDA[0](
        _event(method, path, query, body, headers.get("content-type"), cookies), _Ctx()
    )
    got_body = (
        base64.b64decode(result["body"]) if result.get("isBase64Encoded")
        else (result.get("body") or "").encode()
    )  # fmt: skip
    return result["statusCode"], _lambda_headers(result), got_body


def _via_gcp(method: str, path: str, query: list[tuple[str, str]], body: bytes | None,
             headers: dict[str, str], cookies: dict[str, str]) -> tuple[int, dict[str, list[str]], bytes]:  # fmt: skip
    import flask

    url = path + ("?" + urlencode(query, quote_via=quote) if query else "")
    with flask.Flask(__name__).test_request_context(
        url, method=method, data=body or b"", headers=headers
    ):
        native = _GCP[0](flask.request)
    got: dict[str, list[str]] = {}
    for name, value in native.headers.items():
        got.setdefault(name.lower(), []).append(value)
    return native.status_code, got, native.get_data()


def _via_azure(method: str, path: str, query: list[tuple[str, str]], body: bytes | None,
               headers: dict[str, str], cookies: dict[str, str]) -> tuple[int, dict[str, list[str]], bytes]:  # fmt: skip
    import azure.functions as func
    from adapters.azure.tests.support import InvocationContext

    url = (
        "https://testserver/api" + path + ("?" + urlencode(query, quote_via=quote) if query else "")
    )
    native_request = func.HttpRequest(
        method, url, headers=headers, params=dict(query), body=body or b""
    )
    native = _AZURE[0].get_user_function()(native_request, InvocationContext("inv-1"))
    got: dict[str, list[str]] = {}
    for name, value in native.headers.items():
        got.setdefault(name.lower(), []).append(value)
    return native.status_code, got, native.get_body()


def _via_cloudflare(method: str, path: str, query: list[tuple[str, str]], body: bytes | None,
                    headers: dict[str, str], cookies: dict[str, str]) -> tuple[int, dict[str, list[str]], bytes]:  # fmt: skip
    import asyncio

    from polyserve_cloudflare.testing import FakeExecutionContext, FakeRequest

    url = "https://testserver" + path + ("?" + urlencode(query, quote_via=quote) if query else "")
    worker = _CLOUDFLARE[0](FakeExecutionContext(), {})
    native = asyncio.run(worker.fetch(FakeRequest(method, url, list(headers.items()), body or b"")))
    got: dict[str, list[str]] = {}
    for name, value in native.headers.entries():
        if name != "set-cookie":
            got.setdefault(name, []).append(value)
    if native.headers.getSetCookie():
        got["set-cookie"] = list(native.headers.getSetCookie())
    return native.status, got, native.content


def _via_serve(method: str, path: str, query: list[tuple[str, str]], body: bytes | None,
               headers: dict[str, str], cookies: dict[str, str]) -> tuple[int, dict[str, list[str]], bytes]:  # fmt: skip
    response = httpx.request(
        method, _SERVE[0] + path, params=urlencode(query, quote_via=quote), content=body, headers=headers,
        follow_redirects=False,
    )  # fmt: skip
    got: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        got.setdefault(name.lower(), []).append(value)
    return response.status_code, got, response.content


_CLOUDFLARE: list[Any] = []
_SERVE: list[str] = []
_LAMBDA: list[Any] = []
_GCP: list[Any] = []
_AZURE: list[Any] = []
PROVIDERS = {
    "aws": _via_lambda, "gcp": _via_gcp, "azure": _via_azure, "cloudflare": _via_cloudflare,
    "serve": _via_serve,
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _entries() -> Iterator[None]:
    import polyserve_azure
    import polyserve_gcp

    app = App("equivalence")
    app.mount("/", _api())
    _LAMBDA[:] = [polyserve_aws.handler(app)]
    _GCP[:] = [polyserve_gcp.http(app)]
    functions = {
        str(f.get_function_name()): f for f in polyserve_azure.function_app(app).get_functions()
    }
    _AZURE[:] = [functions["http"]]
    import polyserve_cloudflare
    from polyserve_cloudflare.testing import FakeRuntime

    # Workers run one event loop per isolate: this app is served by its own.
    worker_app = App("equivalence-worker")
    worker_app.mount("/", _api())
    _CLOUDFLARE[:] = [polyserve_cloudflare.entrypoint(worker_app, runtime=FakeRuntime())]
    served = App("equivalence-serve")
    served.mount("/", _api())
    url, stop = _start_uvicorn(served)
    _SERVE[:] = [url]
    yield
    stop()
    app.close()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=requests, cookies=cookie_jars)
def test_each_provider_answers_as_uvicorn(
    uvicorn_url: str, provider: str, request: Any, cookies: dict[str, str]
) -> None:
    method, path, query, body, content_type = request
    headers = {"host": "testserver", "x-forwarded-proto": "http"}
    if content_type:
        headers["content-type"] = content_type
    if cookies:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    expected = httpx.request(
        method, uvicorn_url + path, params=query, content=body, headers=headers,
        follow_redirects=False,
    )  # fmt: skip
    status, got_headers, got_body = PROVIDERS[provider](method, path, query, body, headers, cookies)
    assert status == expected.status_code
    assert got_body == expected.content
    want: dict[str, list[str]] = {}
    for name, value in expected.headers.multi_items():
        if name.lower() not in SERVER_HEADERS:
            want.setdefault(name.lower(), []).append(value)
    got = {k: v for k, v in got_headers.items() if k not in SERVER_HEADERS}
    assert got == want
