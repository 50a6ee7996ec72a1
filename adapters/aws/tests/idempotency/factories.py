"""Picklable factories of DynamoDBStore for the contract checks, which build stores in
spawned worker processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from polyserve_aws.idempotency import DynamoDBStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


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
        import botocore.session
        from botocore.config import Config

        config = Config(
            connect_timeout=2,
            # Generous: a timed-out write that botocore retries fails its own condition.
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": self.max_attempts},
        )
        # botocore rather than boto3: each worker process of the contract checks starts
        # faster without boto3's imports.
        client = botocore.session.Session().create_client(
            "dynamodb",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=config,
        )
        return ClosingDynamoDBStore(self.table_name, client=cast("DynamoDBClient", client))
