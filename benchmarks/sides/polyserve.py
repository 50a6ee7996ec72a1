"""polyserve: one app with the GET, POST and queue handlers; a 1,000-route app; a middleware app.

Every handler is ``polyserve_aws.handler(app)``, as a function deploys it.
"""

from __future__ import annotations

from typing import Any

import polyserve
import polyserve_aws
from benchmarks.workloads import ROUTES, STORE, Handler, NewPet, PetStore, process_order
from polyserve import App, Message

__all__ = ["handlers"]


def pets_app() -> App:
    """The pets API and the orders queue."""
    app = App("pets-api")

    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int) -> dict[str, Any]:
        return STORE.get(pet_id)

    @app.post("/pets", status=201)
    def create_pet(pet: NewPet) -> NewPet:
        return pet

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        process_order(msg.json())

    return app


def many_routes_app() -> App:
    """``ROUTES`` parameterised routes, ``/r0/{item_id}`` to ``/r999/{item_id}``."""
    app = App("many-routes")

    def get_item(item_id: int) -> dict[str, Any]:
        return STORE.get(item_id)

    for i in range(ROUTES):
        app.get(f"/r{i}/{{item_id:int}}", name=f"item-{i}")(get_item)
    return app


def middleware_app() -> App | None:
    """The pets GET behind one pass-through middleware, its store given by a dependency.

    ``None`` while ``App`` has no middleware (``@app.middleware``) or ``polyserve``
    no ``Depends``.
    """
    app = App("pets-api-middleware")
    middleware = getattr(app, "middleware", None)
    depends = getattr(polyserve, "Depends", None)
    if middleware is None or depends is None:
        return None

    def pass_through(call: Any, event: Any, ctx: Any) -> Any:
        return call(event)

    middleware(pass_through)  # as ``@app.middleware`` does

    def pet_store() -> PetStore:
        return STORE

    # The dependency's marker is the parameter's default: that is the API's design.
    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int, store: PetStore = depends(pet_store)) -> dict[str, Any]:  # noqa: B008
        return store.get(pet_id)

    return app


def handlers() -> dict[str, Handler]:
    pets = polyserve_aws.handler(pets_app())
    many = polyserve_aws.handler(many_routes_app())
    found: dict[str, Handler] = {
        "get-v1": pets,
        "get-v2": pets,
        "post-valid": pets,
        "post-invalid": pets,
        "sqs": pets,
        "route-first": many,
        "route-last": many,
    }
    with_middleware = middleware_app()
    if with_middleware is not None:
        found["middleware"] = polyserve_aws.handler(with_middleware)
    return found
