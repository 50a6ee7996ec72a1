"""A warm app answers every request as a cold one would.

Call plans, binders and validators are worked out on first use and kept; a path
requests have reached goes straight to its plan. A sequence of requests sent to one
app (valid and invalid bodies, path and query values, unknown paths and methods,
sync and async entry points) must get, each, the response a fresh app gives it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from polyserve import (
    App,
    Context,
    Depends,
    Header,
    Headers,
    HttpRequest,
    HttpResponse,
    Query,
    QueryParams,
)


class NewPet(BaseModel):
    name: str
    age: int = 0


def tenant(x_tenant: Annotated[str, Header()] = "public") -> str:
    return x_tenant


def build() -> App:
    app = App("warm")

    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int) -> dict[str, int]:
        return {"id": pet_id}

    @app.post("/pets", status=201)
    def create_pet(pet: NewPet, who: Annotated[str, Depends(tenant)]) -> dict[str, Any]:
        return {"pet": pet.model_dump(), "tenant": who}

    @app.get("/search")
    async def search(q: Annotated[list[int], Query()], limit: int = 10) -> dict[str, Any]:
        return {"q": q, "limit": limit}

    @app.put("/pets/{pet_id:int}/name")
    def rename(pet_id: int, body: bytes) -> HttpResponse:
        return HttpResponse.text(f"{pet_id}:{body.decode('utf-8', 'replace')}")

    return app


_bodies = st.sampled_from(
    [b'{"name": "Rex"}', b'{"name": "Rex", "age": 3}', b'{"name": 1}', b'{"age": "old"}',
     b"[]", b"not json", b"", b'{"name": "Rex", "age": -1e400}']
)  # fmt: skip
_segments = st.sampled_from(["1", "42", "-3", "x", "1.5", "", "%20"])
_queries = st.lists(st.sampled_from(["q=1", "q=2", "q=x", "limit=3", "limit=y", "other=1"]))
_tenants = st.sampled_from([{}, {"x-tenant": "acme"}, {"x-tenant": ""}])


@st.composite
def requests(draw: st.DrawFn) -> HttpRequest:
    kind = draw(st.sampled_from(["get", "post", "search", "rename", "unknown", "method"]))
    headers = dict(draw(_tenants))
    if kind == "get":
        return HttpRequest("GET", f"/pets/{draw(_segments)}", headers=Headers(headers))
    if kind == "post":
        headers["content-type"] = "application/json"
        return HttpRequest("POST", "/pets", headers=Headers(headers), body=draw(_bodies))
    if kind == "search":
        query = QueryParams.from_string("&".join(draw(_queries)))
        return HttpRequest("GET", "/search", query=query, headers=Headers(headers))
    if kind == "rename":
        body = draw(st.binary(max_size=8))
        return HttpRequest("PUT", f"/pets/{draw(_segments)}/name", body=body)
    if kind == "unknown":
        return HttpRequest("GET", f"/{draw(_segments)}/nowhere")
    return HttpRequest("DELETE", "/pets")


def _answer(response: HttpResponse) -> tuple[int, Any, list[tuple[str, str]]]:
    body: Any = response.body
    if response.headers.get("content-type", "").endswith("json") and response.body:
        body = json.loads(response.body)
        if isinstance(body, dict):
            body.pop("instance", None)  # the invocation id of a problem response
    return response.status, body, response.headers.multi_items()


def _context() -> Context:
    return Context("local", invocation_id="same")


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(st.tuples(requests(), st.booleans()), min_size=2, max_size=12))
def test_each_request_to_a_warm_app_gets_what_a_cold_app_gives(
    sequence: list[tuple[HttpRequest, bool]],
) -> None:
    warm = build()
    for request, is_async in sequence:
        if is_async:
            got = asyncio.run(warm.handle_http_async(request, _context()))
        else:
            got = warm.handle_http(request, _context())
        cold = build().handle_http(request, _context())
        assert _answer(got) == _answer(cold), request
