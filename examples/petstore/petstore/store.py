"""An in-memory pet repository: the example's embedded default for local runs and tests."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field


@dataclass
class Pet:
    id: int
    name: str
    species: str
    age: int = 0
    adopted: bool = False


@dataclass
class PetRepository:
    """Thread-safe storage for pets, kept in memory for the life of the process."""

    _pets: dict[int, Pet] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, species: str, age: int) -> Pet:
        with self._lock:
            pet = Pet(next(self._ids), name, species, age)
            self._pets[pet.id] = pet
            return pet

    def get(self, pet_id: int) -> Pet | None:
        return self._pets.get(pet_id)

    def list(self, species: str | None = None, limit: int = 100) -> list[Pet]:
        pets = [p for p in self._pets.values() if species is None or p.species == species]
        return pets[:limit]

    def replace(self, pet_id: int, name: str, species: str, age: int) -> Pet | None:
        with self._lock:
            if pet_id not in self._pets:
                return None
            pet = self._pets[pet_id] = Pet(pet_id, name, species, age)
            return pet

    def remove(self, pet_id: int) -> bool:
        with self._lock:
            return self._pets.pop(pet_id, None) is not None

    def mark_adopted(self, pet_id: int) -> bool:
        with self._lock:
            pet = self._pets.get(pet_id)
            if pet is None:
                return False
            pet.adopted = True
            return True
