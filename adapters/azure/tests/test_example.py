"""The petstore example's ``function_app.py``: its functions, bindings and a few invocations."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

import azure.functions as func
import pytest
from adapters.azure.tests.support import (
    assert_worker_accepts,
    bindings,
    call,
    functions,
    http_request,
    queue_message,
)
from azure.functions.timer import TimerRequest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from azure.functions.decorators.function_app import Function

EXAMPLE = Path(__file__).parents[3] / "examples" / "petstore"


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(EXAMPLE))
    spec = importlib.util.spec_from_file_location(
        "petstore_function_app", EXAMPLE / "function_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    mp.undo()


@pytest.fixture(scope="module")
def fns(example: ModuleType) -> dict[str, Function]:
    assert isinstance(example.app, func.FunctionApp)
    return functions(example.app)


def test_the_example_generates_three_functions(fns: dict[str, Function]) -> None:
    assert set(fns) == {"http", "queue_adoptions", "schedule_nightly-report"}
    for fn in fns.values():
        assert_worker_accepts(fn)
    assert bindings(fns["queue_adoptions"])[0]["connection"] == "AzureWebJobsStorage"
    assert bindings(fns["schedule_nightly-report"])[0]["schedule"] == "0 0 3 * * *"
    assert bindings(fns["http"])[0]["route"] == "{*path}"


def test_host_json_matches_the_adapter_defaults() -> None:
    host = json.loads((EXAMPLE / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensionBundle"]["version"].startswith("[4.")
    assert host["extensions"]["http"]["routePrefix"] == "api"
    assert host["functionTimeout"] == "00:05:00"


def test_create_read_and_adopt_a_pet(fns: dict[str, Function]) -> None:
    http = fns["http"]
    created = call(
        http,
        http_request(
            "POST",
            "https://petstore.azurewebsites.net/api/pets",
            headers={"content-type": "application/json"},
            body=b'{"name": "Rex", "species": "dog", "age": 3}',
        ),
    )
    assert created.status_code == 201
    pet = json.loads(created.get_body())
    assert (pet["name"], pet["adopted"]) == ("Rex", False)

    adoption = json.dumps({"pet_id": pet["id"], "adopter": "ann"}).encode()
    assert call(fns["queue_adoptions"], queue_message(adoption)) is None

    read = call(
        http, http_request("GET", f"https://petstore.azurewebsites.net/api/pets/{pet['id']}")
    )
    assert read.status_code == 200
    assert json.loads(read.get_body())["adopted"] is True


def test_validation_and_missing_pets(fns: dict[str, Function]) -> None:
    bad = call(
        fns["http"],
        http_request(
            "POST",
            "https://petstore.azurewebsites.net/api/pets",
            headers={"content-type": "application/json"},
            body=b'{"name": ""}',
        ),
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    missing = call(
        fns["http"], http_request("GET", "https://petstore.azurewebsites.net/api/pets/999999")
    )
    assert (missing.status_code, json.loads(missing.get_body())["code"]) == (404, "pet_not_found")


def test_an_adoption_of_an_unknown_pet_fails_so_it_is_retried(fns: dict[str, Function]) -> None:
    with pytest.raises(LookupError):
        call(fns["queue_adoptions"], queue_message(b'{"pet_id": 999999, "adopter": "bob"}'))


def test_the_nightly_report_runs(fns: dict[str, Function]) -> None:
    assert call(fns["schedule_nightly-report"], TimerRequest(past_due=False)) is None
