"""AWS Lambda Powertools for Python: its event handler and its batch processor.

Each resolver in its cheapest set-up for the work: the GET routes on the default
resolvers (no validation: the handler converts the id itself), the POST route on an
HTTP API resolver with data validation enabled, so that the pydantic model is
validated and a bad body answered with 422, as polyserve does. Installed only in the
benchmark session (``nox -s bench``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from benchmarks.workloads import STORE, NewPet, process_order

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from benchmarks.workloads import Handler

__all__ = ["handlers"]


def _get_pet(pet_id: str) -> dict[str, Any]:
    return STORE.get(int(pet_id))


def handlers() -> dict[str, Handler]:
    rest = APIGatewayRestResolver()
    rest.get("/pets/<pet_id>")(_get_pet)
    http = APIGatewayHttpResolver()
    http.get("/pets/<pet_id>")(_get_pet)

    validated = APIGatewayHttpResolver(enable_validation=True)

    def create_pet(pet: NewPet) -> NewPet:
        return pet

    validated.post("/pets", status_code=201)(create_pet)

    processor = BatchProcessor(event_type=EventType.SQS)

    def on_order(record: SQSRecord) -> None:
        process_order(record.json_body)

    def on_orders(event: dict[str, Any], context: Any) -> Any:
        return process_partial_response(event, on_order, processor, context)

    return {
        "get-v1": rest.resolve,
        "get-v2": http.resolve,
        "post-valid": validated.resolve,
        "post-invalid": validated.resolve,
        "sqs": on_orders,
    }
