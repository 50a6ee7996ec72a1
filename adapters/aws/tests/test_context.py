"""The polyserve Context built from Lambda's context object."""

from __future__ import annotations

import time

import pytest
from adapters.aws.tests.support import FakeLambdaContext

from polyserve_aws._context import to_context


def test_context_fields() -> None:
    before = time.time()
    lambda_context = FakeLambdaContext(remaining_ms=2_500)
    ctx = to_context(lambda_context)
    after = time.time()

    assert ctx.provider == "aws"
    assert ctx.invocation_id == lambda_context.aws_request_id
    assert ctx.function_name == "pets-fn"
    assert ctx.raw is lambda_context
    assert ctx.deadline is not None
    # Worked out when first read, from the time the runtime says is left (in ms).
    assert before + 2.5 - 0.001 <= ctx.deadline <= after + 2.5
    remaining = ctx.remaining_time()
    assert remaining is not None
    assert remaining == pytest.approx(2.5, abs=0.5)


def test_no_context_object_means_no_deadline() -> None:
    ctx = to_context(None)

    assert (ctx.provider, ctx.invocation_id, ctx.deadline) == ("aws", "", None)
