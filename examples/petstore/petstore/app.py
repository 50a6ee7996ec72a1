"""The petstore app: HTTP CRUD, an adoption queue and a nightly report.

Nothing here names a cloud. Each provider's entry file (``lambda_function.py``,
``function_app.py``, ``main.py``, ``worker.py``) wraps this ``app``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from petstore.store import Pet, PetRepository
from polyserve import CORS, App, Context, HttpError, Message, ScheduleEvent

app = App("petstore", cors=CORS(allow_origins=("*",)))
pets = PetRepository()


class NewPet(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    species: str = Field(min_length=1, max_length=50)
    age: int = Field(default=0, ge=0, le=100)


class Adoption(BaseModel):
    pet_id: int
    adopter: str


@app.get("/pets")
def list_pets(species: str | None = None, limit: int = 100) -> list[Pet]:
    return pets.list(species, limit)


@app.get("/pets/{pet_id:int}")
def get_pet(pet_id: int) -> Pet:
    pet = pets.get(pet_id)
    if pet is None:
        raise HttpError(404, "pet_not_found", f"no pet with id {pet_id}")
    return pet


@app.post("/pets", status=201)
def create_pet(pet: NewPet, ctx: Context) -> Pet:
    created = pets.add(pet.name, pet.species, pet.age)
    ctx.logger.info("pet created", pet_id=created.id)
    return created


@app.put("/pets/{pet_id:int}")
def replace_pet(pet_id: int, pet: NewPet) -> Pet:
    replaced = pets.replace(pet_id, pet.name, pet.species, pet.age)
    if replaced is None:
        raise HttpError(404, "pet_not_found", f"no pet with id {pet_id}")
    return replaced


@app.delete("/pets/{pet_id:int}")
def delete_pet(pet_id: int) -> None:
    if not pets.remove(pet_id):
        raise HttpError(404, "pet_not_found", f"no pet with id {pet_id}")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.queue("adoptions")
def on_adoption(adoption: Adoption, msg: Message, ctx: Context) -> None:
    """Mark a pet adopted. An unknown pet fails the message, so it is redelivered."""
    if not pets.mark_adopted(adoption.pet_id):
        raise LookupError(f"no pet with id {adoption.pet_id}")
    ctx.logger.info("pet adopted", pet_id=adoption.pet_id, message_id=msg.id, attempt=msg.attempt)


@app.schedule("nightly-report", cron="0 3 * * *")
def nightly_report(event: ScheduleEvent, ctx: Context) -> dict[str, int]:
    all_pets = pets.list(limit=10_000)
    report = {"pets": len(all_pets), "adopted": sum(p.adopted for p in all_pets)}
    ctx.logger.info("nightly report", **report)
    return report
