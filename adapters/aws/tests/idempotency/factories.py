"""Picklable factories of DynamoDBStore for the contract checks, which build stores in
spawned worker processes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from polyserve_aws.idempotency import DynamoDBStore

if TYPE_CHECKING:
    import botocore.session
    from mypy_boto3_dynamodb.client import DynamoDBClient


@functools.cache
def _session() -> botocore.session.Session:
    """This process's botocore session, with DynamoDB's service model already loaded.

    Building the first client reads botocore's data files (the service model, endpoints,
    retry rules), which costs more than the race the contract checks run. The fork server
    imports this module and calls this once (see :func:`warm`), so every worker forked from
    it builds its own client from the loaded data.
    """
    import botocore.session

    session = botocore.session.Session()
    session.create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # never contacted: creating a client sends nothing
        aws_access_key_id="warm-up",
        aws_secret_access_key="warm-up",
    ).close()
    return session


def warm() -> None:
    """Load botocore and DynamoDB's service model into this process."""
    _session()


class ClosingDynamoDBStore(DynamoDBStore):
    """A DynamoDBStore that also closes the client it was given: each factory call makes one."""

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True, slots=True)
class DynamoDBStoreFactory:
    """Builds a store on one table of one DynamoDB server, with the server's dummy keys."""

    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    table_name: str
    max_attempts: int = 3

    def __call__(self) -> ClosingDynamoDBStore:
        from botocore.config import Config

        config = Config(
            connect_timeout=2,
            # Generous: a timed-out write that botocore retries fails its own condition.
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": self.max_attempts},
        )
        # botocore rather than boto3: each worker process of the contract checks starts
        # faster without boto3's imports. The session is shared, each client is new.
        client = _session().create_client(
            "dynamodb",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=config,
        )
        return ClosingDynamoDBStore(self.table_name, client=cast("DynamoDBClient", client))
