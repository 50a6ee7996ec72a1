"""The Firestore emulator, where it is installed, and a store factory on it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from adapters.gcp.tests.idempotency.factories import ClosingFirestoreStore, FirestoreStoreFactory

if TYPE_CHECKING:
    from collections.abc import Iterator

    from polyserve_testkit.servers import GcloudEmulator

_WHY_OPTIONAL = (
    "the Firestore emulator comes with the gcloud SDK, which cannot be installed offline, so "
    ".ci/install-servers does not install it and CI skips these tests too"
)


@pytest.fixture(scope="session")
def firestore_factory(request: pytest.FixtureRequest) -> FirestoreStoreFactory:
    """A store factory on a fresh collection of the Firestore emulator."""
    try:
        emulator: GcloudEmulator = request.getfixturevalue("firestore_emulator")
    except pytest.skip.Exception as skipped:
        pytest.skip(f"{skipped.msg}; {_WHY_OPTIONAL}")
    return FirestoreStoreFactory(
        emulator.address, emulator.project_id, f"idempotency-{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture
def firestore_store(firestore_factory: FirestoreStoreFactory) -> Iterator[ClosingFirestoreStore]:
    store = firestore_factory()
    yield store
    store.close()
