"""One idempotency table in Azurite, created once per session."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from tests.integration.idempotency.azure.factories import TableStoreFactory

if TYPE_CHECKING:
    from collections.abc import Iterator

    from polyserve_azure.idempotency import TableStore
    from polyserve_testkit.servers import AzuriteServer


@pytest.fixture(scope="session")
def table_factory(azurite: AzuriteServer) -> TableStoreFactory:
    """A store factory on a fresh Azurite table."""
    factory = TableStoreFactory(azurite.connection_string, f"idempotency{uuid.uuid4().hex[:12]}")
    store = factory()
    try:
        store.create_table()
    finally:
        store.close()
    return factory


@pytest.fixture
def table_store(table_factory: TableStoreFactory) -> Iterator[TableStore]:
    store = table_factory()
    yield store
    store.close()
