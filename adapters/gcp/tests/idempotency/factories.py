"""Picklable factories of FirestoreStore for the contract checks, which build stores in
spawned worker processes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from polyserve_gcp.idempotency import FirestoreStore


class ClosingFirestoreStore(FirestoreStore):
    """A FirestoreStore that also closes the client it was given."""

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True, slots=True)
class FirestoreStoreFactory:
    """Builds a store on one collection of the Firestore emulator at ``address``."""

    address: str
    project: str
    collection: str
    timeout: float = 10.0

    def __call__(self) -> ClosingFirestoreStore:
        from google.cloud import firestore

        # The client reads the emulator's address when it is created; setting it only
        # meanwhile keeps it from reaching the other tests.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FIRESTORE_EMULATOR_HOST", self.address)
            client = firestore.Client(project=self.project)
        return ClosingFirestoreStore(self.collection, client=client, timeout=self.timeout)
