"""One idempotency table per DynamoDB server, created once per session."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from adapters.aws.tests.idempotency.factories import ClosingDynamoDBStore, DynamoDBStoreFactory

if TYPE_CHECKING:
    from collections.abc import Iterator

    from polyserve_testkit.servers import DynamoDBServer


@pytest.fixture(scope="session")
def dynamodb_factory(dynamodb_server: DynamoDBServer) -> DynamoDBStoreFactory:
    """A store factory on a fresh table of each DynamoDB implementation in turn."""
    factory = DynamoDBStoreFactory(
        endpoint_url=dynamodb_server.endpoint_url,
        region=dynamodb_server.region,
        access_key_id=dynamodb_server.access_key_id,
        secret_access_key=dynamodb_server.secret_access_key,
        table_name=f"idempotency-{uuid.uuid4().hex[:12]}",
    )
    store = factory()
    try:
        store.create_table()
    finally:
        store.close()
    return factory


@pytest.fixture
def dynamodb_store(dynamodb_factory: DynamoDBStoreFactory) -> Iterator[ClosingDynamoDBStore]:
    store = dynamodb_factory()
    yield store
    store.close()
