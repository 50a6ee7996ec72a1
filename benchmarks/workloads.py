"""The work every implementation does, the events it gets and the answers it must give.

A workload is one kind of invocation: an event (each invocation gets its own copy,
as the runtime parses one per invocation) and a check of the handler's answer, run
before anything is measured so that every implementation is seen doing the same work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from benchmarks.events import FAILING, http_v2, rest_v1, sqs_batch

__all__ = [
    "ROUTES",
    "STORE",
    "WORKLOADS",
    "Handler",
    "NewPet",
    "PetStore",
    "Workload",
    "process_order",
]

Handler = Callable[[dict[str, Any], Any], Any]
"""A Lambda handler: ``handler(event, context)``."""

ROUTES = 1000
"""Routes of the app measured for route matching: ``/r0/{id}`` to ``/r999/{id}``."""


class Owner(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")


class NewPet(BaseModel):
    """The body of ``POST /pets``."""

    name: str = Field(min_length=1, max_length=100)
    species: str
    age: int = Field(ge=0, le=100)
    tags: list[str] = []
    owner: Owner


class PetStore:
    """Where the pets are: the work a GET does once routed (the same for everyone)."""

    def get(self, pet_id: int) -> dict[str, Any]:
        return {"id": pet_id, "name": "Rex", "species": "dog", "age": 3, "tags": ["good"]}


STORE = PetStore()


def process_order(order: dict[str, Any]) -> int:
    """The work a queued order gets: an order without items is rejected."""
    if not order["items"]:
        raise ValueError(f"order {order['order_id']} has no items")
    return sum(item["quantity"] for item in order["items"])


@dataclass(frozen=True)
class Workload:
    name: str
    event: dict[str, Any]
    check: Callable[[Any], str | None]
    """What is wrong with a handler's answer, or None."""


def _status(
    expected: int, body: Callable[[Any], bool] = lambda body: True
) -> Callable[[Any], str | None]:
    def check(answer: Any) -> str | None:
        if not isinstance(answer, dict) or answer.get("statusCode") != expected:
            return f"expected status {expected}, got {answer!r:.300}"
        if not body(json.loads(answer["body"])):
            return f"unexpected body {answer['body']!r:.300}"
        return None

    return check


def _failures(answer: Any) -> str | None:
    expected = [{"itemIdentifier": r["messageId"]} for r in _BATCH["Records"] if r["body"] in _BAD]
    if answer != {"batchItemFailures": expected}:
        return f"expected {expected}, got {answer!r:.300}"
    return None


_BATCH = sqs_batch()
_BAD = {r["body"] for i, r in enumerate(_BATCH["Records"]) if i in FAILING}
_VALID = json.dumps(
    {
        "name": "Rex",
        "species": "dog",
        "age": 3,
        "tags": ["good", "friendly"],
        "owner": {"name": "Ada Lovelace", "email": "ada@example.com"},
    }
)
_INVALID = json.dumps({"name": 7, "age": "old", "tags": ["good"], "owner": {"name": "Ada"}})


def _pet(pet_id: int) -> Callable[[Any], bool]:
    return lambda body: body == STORE.get(pet_id)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("get-v1", rest_v1("GET", "/pets/42"), _status(200, _pet(42))),
        Workload("get-v2", http_v2("GET", "/pets/42"), _status(200, _pet(42))),
        Workload(
            "post-valid",
            http_v2("POST", "/pets", body=_VALID),
            _status(201, lambda body: body == json.loads(_VALID)),
        ),
        Workload(
            "post-v1",
            rest_v1("POST", "/pets", body=_VALID),
            _status(201, lambda body: body == json.loads(_VALID)),
        ),
        Workload("post-invalid", http_v2("POST", "/pets", body=_INVALID), _status(422)),
        Workload("sqs", _BATCH, _failures),
        Workload("route-first", http_v2("GET", "/r0/42"), _status(200, _pet(42))),
        Workload("route-last", http_v2("GET", f"/r{ROUTES - 1}/42"), _status(200, _pet(42))),
        # The GET of get-v2, on an app with one middleware and a dependency.
        Workload("middleware", http_v2("GET", "/pets/42"), _status(200, _pet(42))),
    )
}
