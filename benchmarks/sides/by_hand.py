"""Hand-written handlers: the same work, written plainly without a framework.

What a careful engineer writes for one function serving these routes and this queue:
match the method and path, convert the parameter, validate the body with the pydantic
model, answer JSON; for the queue, one line logged per failed record and the failures
reported as ``batchItemFailures``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import Any

from pydantic import ValidationError

from benchmarks.workloads import STORE, Handler, NewPet, process_order

__all__ = ["handlers"]

logger = logging.getLogger("orders")

_JSON = {"Content-Type": "application/json"}
_PET = re.compile(r"/pets/(\d+)")
_NOT_FOUND = {"statusCode": 404, "headers": _JSON, "body": '{"message":"not found"}'}


def _get_pet(method: str, path: str) -> dict[str, Any]:
    match = _PET.fullmatch(path)
    if method != "GET" or match is None:
        return _NOT_FOUND
    body = json.dumps(STORE.get(int(match[1])))
    return {"statusCode": 200, "headers": _JSON, "body": body}


def get_pet_rest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _get_pet(event["httpMethod"], event["path"])


def get_pet_http(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _get_pet(event["requestContext"]["http"]["method"], event["rawPath"])


def create_pet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["requestContext"]["http"]["method"] != "POST" or event["rawPath"] != "/pets":
        return _NOT_FOUND
    body = event.get("body") or ""
    if event["isBase64Encoded"]:
        body = base64.b64decode(body)
    try:
        pet = NewPet.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"loc": e["loc"], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return {"statusCode": 422, "headers": _JSON, "body": json.dumps({"errors": errors})}
    return {"statusCode": 201, "headers": _JSON, "body": pet.model_dump_json()}


def on_orders(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        try:
            process_order(json.loads(record["body"]))
        except Exception as exc:
            logger.error("message %s failed: %s: %s", record["messageId"], type(exc).__name__, exc)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def handlers() -> dict[str, Handler]:
    return {
        "get-v1": get_pet_rest,
        "get-v2": get_pet_http,
        "post-valid": create_pet,
        "post-invalid": create_pet,
        "sqs": on_orders,
    }
