"""The FastAPI app both ASGI sides serve: the pets GET and POST of the other workloads."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from benchmarks.workloads import STORE, NewPet

__all__ = ["CALLS", "fastapi_app"]

CALLS = {"get_pet": 0, "create_pet": 0}
"""How many times each endpoint ran: proof that an answer came from the FastAPI app."""


def fastapi_app() -> FastAPI:
    """``GET /pets/{pet_id}`` and ``POST /pets`` (201), as FastAPI users write them."""
    api = FastAPI()

    @api.get("/pets/{pet_id}")
    def get_pet(pet_id: int) -> dict[str, Any]:
        CALLS["get_pet"] += 1
        return STORE.get(pet_id)

    @api.post("/pets", status_code=201)
    def create_pet(pet: NewPet) -> NewPet:
        CALLS["create_pet"] += 1
        return pet

    return api
