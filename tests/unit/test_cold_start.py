"""Importing polyserve and the adapters, and building an app, loads no heavy library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HEAVY = (
    "jwt",
    "cryptography",
    "pydantic",
    "boto3",
    "botocore",
    "azure.functions",
    "flask",
    "functions_framework",
    "redis",
    "fastavro",
    "google.protobuf",
    "jsonschema",
)


def _run(script: str, **env: str) -> list[str]:
    """The lines ``script`` prints, run in a fresh interpreter (with ``env`` added)."""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, **env},
    )  # fmt: skip
    return out.stdout.strip().splitlines()


def _loaded_after(code: str) -> list[str]:
    script = textwrap.dedent(
        f"""
        import json, sys
        {textwrap.indent(textwrap.dedent(code), "        ").strip()}
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        """
    )
    loaded: list[str] = json.loads(_run(script)[-1])
    return loaded


def test_importing_core_and_every_adapter_loads_no_sdk() -> None:
    code = """
    import importlib
    import polyserve
    from polyserve import App, Context, HttpRequest, Message
    for name in ("polyserve_aws", "polyserve_azure", "polyserve_gcp", "polyserve_cloudflare"):
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            getattr(module, attr)
    """
    assert _loaded_after(code) == []


def test_a_twenty_route_app_serving_requests_loads_no_pydantic() -> None:
    code = """
    from polyserve import App, Context, HttpRequest, Message, Trigger
    app = App("cold")
    def item(item_id: int, q: str = "") -> dict:
        return {"id": item_id, "q": q}
    for i in range(20):
        app.get(f"/items{i}/{{item_id:int}}", name=f"item{i}")(item)
    @app.queue("orders")
    def on_order(msg: Message) -> None: ...
    ctx = Context("test")
    assert app.handle_http(HttpRequest("GET", "/items7/3"), ctx).status == 200
    app.handle_event(Trigger.QUEUE, "orders", Message(id="1", body=b"{}"), ctx)
    """
    assert _loaded_after(code) == []


def test_declaring_a_pydantic_model_is_what_loads_pydantic() -> None:
    code = """
    from polyserve import App, Context, HttpRequest, Headers
    from pydantic import BaseModel
    class Pet(BaseModel):
        name: str
    app = App("warm")
    @app.post("/pets")
    def create(pet: Pet) -> Pet:
        return pet
    body = b'{"name": "Rex"}'
    headers = Headers({"content-type": "application/json"})
    r = app.handle_http(HttpRequest("POST", "/pets", headers=headers, body=body), Context("t"))
    assert r.status == 200, r
    """
    assert _loaded_after(code) == ["pydantic"]


def _costly_loaded_after(routes: str) -> list[str]:
    # Each of these costs a cold start milliseconds (dataclasses brings inspect, ast and
    # dis); they load with the first request or event instead, and only if needed.
    costly = ("dataclasses", "inspect", "typing", "json", "logging", "re", "asyncio")
    script = textwrap.dedent(
        f"""
        import sys
        import polyserve, polyserve_aws
        from polyserve import App
        app = App("cold")
        def h(item_id: int) -> dict:
            return {{"id": item_id}}
        for route in {routes!r}.split():
            app.get(route, name=route)(h)
        handler = polyserve_aws.handler(app)
        print("loaded:" + ",".join(sorted(m for m in {costly!r} if m in sys.modules)))
        """
    )
    listed = _run(script)[-1].removeprefix("loaded:")
    return [m for m in listed.split(",") if m]


def test_building_an_app_and_its_lambda_handler_loads_no_costly_stdlib_module() -> None:
    routes = " ".join(f"/items{i}/{{item_id:int}}" for i in range(20))
    assert _costly_loaded_after(routes) == []
    # Only a segment that mixes text and a parameter needs a regular expression.
    assert _costly_loaded_after(routes + " /files/v{item_id:int}.json") == ["re"]


def test_an_http_only_function_loads_no_other_event_module() -> None:
    # The first request loads the HTTP event classes and the binder; the five other
    # event modules (a dataclass each), uuid and datetime stay unloaded, and so does
    # everything that reads or verifies who is calling.
    script = textwrap.dedent(
        """
        import sys
        import polyserve_aws
        from polyserve import App
        app = App("http")
        app.get("/pets/{pet_id:int}")(lambda pet_id: {"id": pet_id})

        class Ctx:
            aws_request_id = "r"
            function_name = "f"
            def get_remaining_time_in_millis(self):
                return 1000

        event = {"version": "2.0", "rawPath": "/pets/7", "headers": {"host": "x"},
                 "requestContext": {"http": {"method": "GET"}, "requestId": "r1"}}
        assert polyserve_aws.handler(app)(event, Ctx())["statusCode"] == 200
        names = ["polyserve.events." + m for m in
                 ("queue", "storage", "schedule", "stream", "cloudevent")]
        # Nor the identity modules: nobody asked who is calling.
        names += ["polyserve.identity", "polyserve.auth", "jwt", "base64", "hmac"]
        print("loaded:" + ",".join(m for m in [*names, "uuid", "datetime"] if m in sys.modules))
        """
    )
    assert _run(script)[-1] == "loaded:"


def test_a_first_get_to_plainly_annotated_handlers_loads_neither_typing_nor_json() -> None:
    # typing costs a cold start 3 ms; handlers annotated with plain classes and builtin
    # generics are bound without it. A forward reference (a string) still uses it.
    # Results are encoded by json's C accelerator without the json package (1 ms).
    script = textwrap.dedent(
        """
        import sys
        from polyserve import App, Context, HttpRequest
        app = App("plain")

        def item(item_id: int, q: str = "", tags: list[str] | None = None) -> dict:
            return {"id": item_id, "q": q, "tags": tags}

        app.get("/items/{item_id:int}")(item)
        request = HttpRequest("GET", "/items/3")
        assert app.handle_http(request, Context("t")).body == b'{"id":3,"q":"","tags":null}'
        assert "json" not in sys.modules
        assert "threading" not in sys.modules  # only process-scoped providers need a lock
        print("typing loaded:", "typing" in sys.modules)

        def later(item_id: "int") -> dict:
            return {"id": item_id}

        app.get("/later/{item_id:int}")(later)
        assert app.handle_http(HttpRequest("GET", "/later/4"), Context("t")).body == b'{"id":4}'
        print("typing loaded:", "typing" in sys.modules)
        """
    )
    assert _run(script)[-2:] == ["typing loaded: False", "typing loaded: True"]


def test_a_schema_registry_loads_its_libraries_only_when_a_schema_needs_them() -> None:
    code = """
    from polyserve.schema_registry import Schema, SchemaRegistry, encode
    registry = SchemaRegistry("https://registry.example", schemas={1: Schema("JSON", "{}")})
    SchemaRegistry(validate_json=False, schemas={1: Schema("JSON", "{}")}).decode(encode(1, b"{}"))
    assert "urllib.request" not in sys.modules
    """
    assert _loaded_after(code) == []


_FIRST_INVOCATION = """
import gc
import polyserve_aws
from polyserve import App, Context

app = App("frozen")
app.get("/pets/{pet_id:int}")(lambda pet_id: {"id": pet_id})
handler = polyserve_aws.handler(app)

class Ctx:
    aws_request_id = "r"
    function_name = "f"
    def get_remaining_time_in_millis(self):
        return 1000

def tracked(obj):
    # gc.get_objects() lists the three generations a collection walks, not the
    # permanent one.
    return any(o is obj for o in gc.get_objects())

event = {"version": "2.0", "rawPath": "/pets/7", "headers": {"host": "x"},
         "requestContext": {"http": {"method": "GET"}, "requestId": "r1"}}
# Some versions of CPython freeze a few objects of their own at start-up.
start = gc.get_freeze_count()
print("before:", tracked(app))
assert handler(event, Ctx())["statusCode"] == 200
frozen = gc.get_freeze_count()
print("first:", frozen > start, tracked(app))
later = [object()]
assert handler(event, Ctx())["statusCode"] == 200
print("second:", gc.get_freeze_count() == frozen, tracked(later))
"""


def test_the_first_invocation_freezes_the_heap_built_during_init() -> None:
    # What exists before the first invocation (modules, classes, the app) lives as long
    # as the process: no full collection should walk it again. What later
    # invocations allocate is collected as usual.
    assert _run(_FIRST_INVOCATION) == [
        "before: True",
        "first: True False",
        "second: True True",
    ]


def test_polyserve_gc_freeze_0_leaves_the_heap_to_the_collector() -> None:
    assert _run(_FIRST_INVOCATION, POLYSERVE_GC_FREEZE="0") == [
        "before: True",
        "first: False True",
        "second: True True",
    ]


def test_a_context_given_its_cold_start_flag_freezes_nothing() -> None:
    # Tests and local tools build contexts that say whether they are cold; only the
    # first invocation of a deployed function ends an init.
    script = """
import gc
from polyserve import Context
start = gc.get_freeze_count()
Context("test", is_cold_start=True)
Context("test", is_cold_start=False)
print(gc.get_freeze_count() == start)
print(Context("aws").is_cold_start, gc.get_freeze_count() > start)
"""
    assert _run(script) == ["True", "True True"]


def test_the_errors_of_optional_features_are_built_only_when_asked_for() -> None:
    script = """
import sys
import polyserve.errors as errors
print("polyserve.idempotency.errors" in sys.modules, "polyserve.schema_registry" in sys.modules)
from polyserve.errors import InProgressError, PolyserveError, SchemaError
from polyserve.idempotency.errors import InProgressError as Same
print(InProgressError is Same, issubclass(InProgressError, PolyserveError))
print(issubclass(SchemaError, errors.EventError), SchemaError().code)
print(all(getattr(errors, name) for name in errors.__all__))
try:
    errors.NoSuchError
except AttributeError as exc:
    print(exc)
"""
    assert _run(script) == [
        "False False",
        "True True",
        "True schema_error",
        "True",
        "module 'polyserve.errors' has no attribute 'NoSuchError'",
    ]
