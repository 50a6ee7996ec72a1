"""Picklable factories of TableStore for the contract checks, which build stores in spawned
worker processes."""

from __future__ import annotations

from dataclasses import dataclass

from polyserve_azure.idempotency import TableStore


@dataclass(frozen=True, slots=True)
class TableStoreFactory:
    """Builds a store on one table of one Azurite (or storage account)."""

    connection_string: str
    table_name: str
    max_attempts: int = 3

    def __call__(self) -> TableStore:
        return TableStore(
            self.table_name,
            connection_string=self.connection_string,
            max_attempts=self.max_attempts,
            # Generous: a timed-out write that the client retries fails its own condition.
            read_timeout=60,
        )


class ClosingTableStore(TableStore):
    """A TableStore that also closes the client it was given."""

    def close(self) -> None:
        self.client.close()
