"""A real FastAPI app answers the same through every provider's entry as under uvicorn.

Hypothesis generates requests (path and query parameters, JSON and form bodies,
multipart file uploads, cookies, redirects, HTTPException, validation errors,
background tasks, a streamed body, ``/openapi.json``, ``/docs`` and ``/redoc``); each goes to uvicorn over a
real socket and, as each provider's native request, to its public entry:
``polyserve_aws.handler`` (API Gateway HTTP API), ``polyserve_gcp.http`` (a Werkzeug
request), the HTTP function ``polyserve_azure.function_app`` generates, the Worker
of ``polyserve_cloudflare.entrypoint`` (in-process, with its ``testing`` stand-ins
for the JavaScript objects, as Pyodide is too slow for a property test), and
uvicorn serving the polyserve ``App`` itself (``polyserve serve``).
Status, body and headers must be equal, except the headers a server adds itself
(``date``, ``server``) and the framing (``content-length``, or
``transfer-encoding: chunked`` for a stream), which each platform sets on its side.
A background task must also have run, in the app that answered, by the time the
provider's entry returned. Every kind of request runs against every provider.
"""

from __future__ import annotations

import base64
import copy
import http.cookiejar
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import uvicorn
from fastapi import BackgroundTasks, FastAPI, File, Form, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import polyserve_aws
from polyserve import App
from polyserve_testkit.servers import free_ports

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

SAMPLE = Path(__file__).parents[2] / "adapters/aws/tests/events/apigw-http-post.json"
SERVER_HEADERS = {"date", "server", "content-length", "transfer-encoding"}


class Pet(BaseModel):
    name: str
    age: int = 0


def _api(done: list[str] | None = None) -> FastAPI:
    """The app under test; its background tasks append to ``done``."""
    api = FastAPI()
    finished = done if done is not None else []

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

    @api.post("/upload")
    async def upload(
        file: Annotated[bytes, File()], name: Annotated[str, Form()]
    ) -> dict[str, Any]:
        return {"name": name, "size": len(file), "hex": file.hex()}

    @api.get("/stream")
    async def stream(n: int) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(n):
                yield f"data: {i}\n\n".encode()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @api.post("/tasks", status_code=202)
    async def tasks(name: str, background: BackgroundTasks) -> dict[str, str]:
        background.add_task(finished.append, name)
        return {"queued": name}

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


BOUNDARY = "polyserve-equivalence-7d1c0b9e"


def _multipart(content: bytes, name: str) -> bytes:
    """A multipart body with a file part and a field, as a browser's form sends it."""
    return b"".join([
        f"--{BOUNDARY}\r\n".encode(),
        b'Content-Disposition: form-data; name="file"; filename="f.bin"\r\n',
        b"Content-Type: application/octet-stream\r\n\r\n", content, b"\r\n",
        f"--{BOUNDARY}\r\n".encode(),
        b'Content-Disposition: form-data; name="name"\r\n\r\n', name.encode(), b"\r\n",
        f"--{BOUNDARY}--\r\n".encode(),
    ])  # fmt: skip


words = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=8)
# One strategy per kind of request; each kind runs against each provider.
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "path-query-errors": st.tuples(st.just("GET"), st.builds(lambda i: f"/items/{i}", st.sampled_from(["1", "404", "x", "77"])),
              st.lists(st.tuples(st.just("q"), words), max_size=3), st.none(), st.none()),
    "json-body": st.tuples(st.just("POST"), st.just("/pets"), st.just([]),
              st.builds(lambda n, a: json.dumps({"name": n, "age": a}).encode(), words,
                        st.one_of(st.integers(0, 99), words)),
              st.just("application/json")),
    "form-body": st.tuples(st.just("POST"), st.just("/form"), st.just([]),
              st.builds(lambda n: urlencode({"name": n}).encode(), words),
              st.just("application/x-www-form-urlencoded")),
    "cookies": st.tuples(st.just("GET"), st.just("/cookies"), st.just([]), st.none(), st.none()),
    "redirect": st.tuples(st.just("GET"), st.just("/go"), st.just([]), st.none(), st.none()),
    "multipart-upload": st.tuples(st.just("POST"), st.just("/upload"), st.just([]),
              st.builds(lambda f, n: _multipart(f, n), st.binary(max_size=64), words),
              st.just(f"multipart/form-data; boundary={BOUNDARY}")),
    "background-task": st.tuples(st.just("POST"), st.just("/tasks"),
              st.lists(st.tuples(st.just("name"), words), min_size=1, max_size=1),
              st.none(), st.none()),
    "streaming": st.tuples(st.just("GET"), st.just("/stream"),
              st.lists(st.tuples(st.just("n"), st.integers(0, 5).map(str)), min_size=1, max_size=1),
              st.none(), st.none()),
    "openapi-docs": st.tuples(st.just("GET"), st.sampled_from(["/openapi.json", "/docs", "/redoc"]),
              st.just([]), st.none(), st.none()),
}  # fmt: skip
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

    async def fetch() -> tuple[Any, bytes]:
        native = await worker.fetch(FakeRequest(method, url, list(headers.items()), body or b""))
        return native, await native.read()  # a streamed body is pulled chunk by chunk

    native, content = asyncio.run(fetch())
    got: dict[str, list[str]] = {}
    for name, value in native.headers.entries():
        if name != "set-cookie":
            got.setdefault(name, []).append(value)
    if native.headers.getSetCookie():
        got["set-cookie"] = list(native.headers.getSetCookie())
    return native.status, got, content


def _via_serve(method: str, path: str, query: list[tuple[str, str]], body: bytes | None,
               headers: dict[str, str], cookies: dict[str, str]) -> tuple[int, dict[str, list[str]], bytes]:  # fmt: skip
    response = _HTTP[0].request(
        method, _SERVE[0] + path, params=urlencode(query, quote_via=quote), content=body, headers=headers,
        follow_redirects=False,
    )  # fmt: skip
    got: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        got.setdefault(name.lower(), []).append(value)
    return response.status_code, got, response.content


DONE: dict[str, list[str]] = {}  # the names each provider's background tasks recorded
_CLOUDFLARE: list[Any] = []
_SERVE: list[str] = []
_HTTP: list[httpx.Client] = []
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

    shared: list[str] = []
    app = App("equivalence")
    app.mount("/", _api(shared))
    DONE.update(aws=shared, gcp=shared, azure=shared, cloudflare=[], serve=[])
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
    worker_app.mount("/", _api(DONE["cloudflare"]))
    _CLOUDFLARE[:] = [polyserve_cloudflare.entrypoint(worker_app, runtime=FakeRuntime())]
    served = App("equivalence-serve")
    served.mount("/", _api(DONE["serve"]))
    url, stop = _start_uvicorn(served)
    _SERVE[:] = [url]
    # One client sends every request to uvicorn, as httpx.request would send each (its jar
    # takes no cookies, so no answer's cookie goes with a later request), without a new
    # client, SSL context and connection per request.
    keep_none = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
    with httpx.Client(cookies=http.cookiejar.CookieJar(policy=keep_none)) as client:
        _HTTP[:] = [client]
        yield
    stop()
    app.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), cookies=cookie_jars)
def test_each_provider_answers_as_uvicorn(
    uvicorn_url: str, provider: str, kind: str, data: st.DataObject, cookies: dict[str, str]
) -> None:
    method, path, query, body, content_type = data.draw(KINDS[kind], label=kind)
    headers = {"host": "testserver", "x-forwarded-proto": "http"}
    if content_type:
        headers["content-type"] = content_type
    if cookies:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    expected = _HTTP[0].request(
        method, uvicorn_url + path, params=query, content=body, headers=headers,
        follow_redirects=False,
    )  # fmt: skip
    assert not _HTTP[0].cookies, "the shared client must keep no cookies"
    status, got_headers, got_body = PROVIDERS[provider](method, path, query, body, headers, cookies)
    assert status == expected.status_code
    assert got_body == expected.content
    want: dict[str, list[str]] = {}
    for name, value in expected.headers.multi_items():
        if name.lower() not in SERVER_HEADERS:
            want.setdefault(name.lower(), []).append(value)
    got = {k: v for k, v in got_headers.items() if k not in SERVER_HEADERS}
    assert got == want
    if path == "/tasks":  # the background task ran before the entry returned
        assert DONE[provider][-1] == query[0][1]
