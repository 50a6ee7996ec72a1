"""The OpenAPI document: validated with openapi-spec-validator, for the example app
and for property-generated routes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest  # fixtures' annotations
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from typing_extensions import TypedDict

from polyserve import App, Body, Depends, Header, Query
from polyserve._cli import main
from polyserve.auth import ApiKeys, JwtVerifier
from polyserve.errors import ConfigurationError
from polyserve.identity import Principal  # noqa: TC001  # resolved at run time

ROOT = Path(__file__).resolve().parents[2]
PETSTORE = ROOT / "examples" / "petstore"


class Pet(pydantic.BaseModel):
    id: int
    name: str


class NewPet(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1)


@dataclasses.dataclass
class Order:
    item: str
    quantity: int = 1


class Receipt(TypedDict):
    order_id: str
    total: float


KEYS = ApiKeys({"ci": "secret-key"})
VERIFIER = JwtVerifier(jwks={"keys": []}, issuer="https://issuer", audience="api")


def _app() -> App:
    app = App("shop")

    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int, verbose: bool = False) -> Pet:
        """Fetch one pet.

        Answers 404 when there is none.
        """
        return Pet(id=pet_id, name="Rex")

    @app.post("/pets", status=201)
    def create_pet(pet: NewPet, caller: Annotated[Principal, Depends(KEYS)]) -> Pet:
        """Add a pet."""
        return Pet(id=1, name=pet.name)

    @app.post("/orders/{order_id:uuid}")
    def place(
        order_id: str,
        order: Order,
        tags: Annotated[list[str], Query(alias="tag")] = [],  # noqa: B006
        request_id: Annotated[str | None, Header()] = None,
    ) -> Receipt:
        return Receipt(order_id=order_id, total=1.0)

    @app.delete("/orders/{order_id}", status=204)
    def cancel(order_id: str) -> None:
        return None

    return app


def test_the_document_validates_and_describes_the_routes() -> None:
    doc = _app().openapi(title="Shop", version="2.0")
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "Shop", "version": "2.0"}
    get_pet = doc["paths"]["/pets/{pet_id}"]["get"]
    assert get_pet["summary"] == "Fetch one pet."
    assert get_pet["description"] == "Answers 404 when there is none."
    assert get_pet["tags"] == ["pets"]
    assert get_pet["parameters"] == [
        {"name": "pet_id", "in": "path", "schema": {"type": "integer"}, "required": True},
        {"name": "verbose", "in": "query", "schema": {"type": "boolean", "default": False}},
    ]
    ok = get_pet["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Pet"}
    assert set(doc["components"]["schemas"]["Pet"]["required"]) == {"id", "name"}
    assert sorted(get_pet["responses"]) == ["200", "400", "404", "405", "422", "500"]


def test_bodies_errors_and_security() -> None:
    doc = _app().openapi()
    create = doc["paths"]["/pets"]["post"]
    assert create["requestBody"]["required"] is True
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/NewPet"}
    assert "201" in create["responses"]
    assert "200" not in create["responses"]
    for status in ("401", "413", "415", "422", "500"):
        assert create["responses"][status] == {"$ref": f"#/components/responses/Error{status}"}
    assert create["security"] == [{"apiKey": []}]
    assert doc["components"]["securitySchemes"] == {
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}
    }
    problem = doc["components"]["responses"]["Error422"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/ValidationProblem"}
    field_error = doc["components"]["schemas"]["FieldError"]
    assert field_error["required"] == ["loc", "message", "type"]


def test_dataclass_typeddict_list_query_and_header() -> None:
    doc = _app().openapi()
    place = doc["paths"]["/orders/{order_id}"]["post"]
    params = {(p["in"], p["name"]): p for p in place["parameters"]}
    assert params[("path", "order_id")]["schema"] == {"type": "string", "format": "uuid"}
    assert params[("query", "tag")]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert params[("header", "request-id")]["schema"] == {"type": "string"}
    assert "required" not in params[("header", "request-id")]
    order = doc["components"]["schemas"]["Order"]
    assert order["required"] == ["item"]
    receipt = doc["components"]["schemas"]["Receipt"]
    assert set(receipt["properties"]) == {"order_id", "total"}
    cancel = doc["paths"]["/orders/{order_id}"]["delete"]
    assert cancel["responses"]["204"] == {"description": "Success."}
    assert "security" not in place


def test_jwt_verifier_is_a_bearer_scheme() -> None:
    app = App("secure")

    @app.get("/me")
    def me(user: Annotated[Principal, Depends(VERIFIER)]) -> dict[str, str]:
        return {"id": user.id}

    doc = app.openapi()
    validate(doc)
    assert doc["components"]["securitySchemes"]["jwt"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert doc["paths"]["/me"]["get"]["security"] == [{"jwt": []}]


def test_the_petstore_document_validates() -> None:
    sys.path.insert(0, str(PETSTORE))
    try:
        from petstore.app import app
    finally:
        sys.path.remove(str(PETSTORE))
    doc = app.openapi()
    validate(doc)
    assert doc["paths"]["/pets/{pet_id}"]["get"]["parameters"][0]["schema"] == {"type": "integer"}


_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_KINDS = st.sampled_from(["", ":str", ":int", ":float", ":uuid"])
_QUERY_TYPES = st.sampled_from([int, str, float, bool, list[int], list[str], int | None])
_BODIES = st.sampled_from([None, NewPet, Order, Receipt, dict[str, int], list[Pet], bytes, str])
_RETURNS = st.sampled_from([None, Pet, Order, Receipt, list[int], str, bytes, dict[str, Any]])


@st.composite
def _routes(draw: st.DrawFn) -> list[tuple[str, str, list[tuple[str, Any]], Any, Any]]:
    routes = []
    for index in range(draw(st.integers(1, 6))):
        segments = draw(st.lists(_NAMES, min_size=1, max_size=3))
        params = draw(st.lists(_NAMES, max_size=2, unique=True))
        path = "/" + "/".join(segments) + f"/r{index}"
        path += "".join(f"/{{p_{n}{draw(_KINDS)}}}" for n in params)
        queries = [
            (f"q_{n}", draw(_QUERY_TYPES)) for n in draw(st.lists(_NAMES, max_size=3, unique=True))
        ]
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
        routes.append((method, path, queries, draw(_BODIES), draw(_RETURNS)))
    return routes


def _handler(
    path_params: list[str], queries: list[tuple[str, Any]], body: Any, returns: Any
) -> Any:
    import inspect

    params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)
        for name in path_params
    ]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=tp, default=None)
        for name, tp in queries
    ]
    if body is not None:
        params.append(
            inspect.Parameter(
                "payload",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[body, Body()],
            )
        )

    def handler(**kwargs: Any) -> Any:
        return None

    handler.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    handler.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return handler


@settings(max_examples=40, deadline=None)
@given(_routes())
def test_generated_routes_give_valid_documents(
    routes: list[tuple[str, str, list[tuple[str, Any]], Any, Any]],
) -> None:
    app = App("generated")
    for method, path, queries, body, returns in routes:
        names = [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
        app.add_route(path, _handler(names, queries, body, returns), [method])
    doc = app.openapi()
    validate(doc)
    for method, path, queries, body, _ in routes:
        openapi_path = path
        for kind in (":str", ":int", ":float", ":uuid"):
            openapi_path = openapi_path.replace(kind + "}", "}")
        op = doc["paths"][openapi_path][method.lower()]
        declared = {(p["in"], p["name"]) for p in op.get("parameters", [])}
        assert {("query", name) for name, _ in queries} <= declared
        assert (body is not None and method not in ("GET", "DELETE")) == ("requestBody" in op)


def test_the_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi", "petstore.app:app", "--app-dir", str(PETSTORE)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["openapi"] == "3.1.0"
    assert "/pets" in doc["paths"]


def test_the_command_prints_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    assert main(["openapi", "petstore.app:app", "--app-dir", str(PETSTORE), "--yaml"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    validate(doc)


def test_the_command_reports_a_bad_target_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi", "petstore.app:nothing", "--app-dir", str(PETSTORE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("polyserve: error: module 'petstore.app' has no attribute 'nothing'")
    assert err.count("\n") == 1


def test_building_an_app_does_not_import_pydantic_until_a_schema_is_asked_for() -> None:
    code = (
        "import sys\n"
        "from polyserve import App\n"
        "app = App('a')\n"
        "@app.get('/items/{n:int}')\n"
        "def item(n: int, q: str = '') -> dict:\n"
        "    return {}\n"
        "assert 'pydantic' not in sys.modules\n"
        "assert 'polyserve.openapi' not in sys.modules\n"
        "doc = app.openapi()\n"
        "assert 'pydantic' in sys.modules\n"
        "print(doc['paths']['/items/{n}']['get']['parameters'][0]['schema'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "{'type': 'integer'}"


class _Opaque:
    pass


def test_a_return_type_without_a_schema_is_any_json_and_a_body_without_one_is_an_error() -> None:
    app = App("opaque")

    @app.get("/thing")
    def thing() -> _Opaque:
        return _Opaque()

    doc = app.openapi()
    validate(doc)
    content = doc["paths"]["/thing"]["get"]["responses"]["200"]["content"]
    assert content == {"application/json": {"schema": {}}}

    @app.post("/thing")
    def put_thing(thing: Annotated[_Opaque, Body()]) -> None:
        return None

    with pytest.raises(ConfigurationError, match="no JSON Schema for"):
        app.openapi()
