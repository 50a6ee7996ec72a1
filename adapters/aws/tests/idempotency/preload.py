"""What the store contract's fork server imports before it forks the worker processes:
botocore, with DynamoDB's service model loaded, so no worker reads it again."""

from __future__ import annotations

from adapters.aws.tests.idempotency.factories import warm

warm()
