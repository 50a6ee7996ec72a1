"""Reading AWS's JSON: ARNs and logical names."""

from __future__ import annotations

import pytest

from polyserve_aws import _wire


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:sqs:eu-west-1:210987654321:adoptions", "adoptions"),
        ("arn:aws:sqs:eu-west-1:210987654321:adoptions.fifo", "adoptions.fifo"),
        ("arn:aws:sns:eu-west-1:210987654321:pet-alerts", "pet-alerts"),
        ("arn:aws:kinesis:eu-west-1:210987654321:stream/pet-activity", "pet-activity"),
        ("arn:aws:dynamodb:eu-west-1:2109:table/Pets/stream/2024-05-01T00:00:00.000", "Pets"),
        ("arn:aws:events:us-east-1:210987654321:rule/nightly-report", "nightly-report"),
        ("arn:aws:events:us-east-1:210987654321:rule/custom-bus/nightly", "nightly"),
        ("arn:aws:scheduler:us-east-1:210987654321:schedule/default/weekly", "weekly"),
        ("arn:aws-cn:sqs:cn-north-1:210987654321:orders", "orders"),
        ("pet-photos", "pet-photos"),
        ("", ""),
    ],
)
def test_resource_name(arn: str, name: str) -> None:
    assert _wire.resource_name(arn) == name


def test_logical_name_prefers_the_arn_then_the_short_name() -> None:
    arn = "arn:aws:sqs:eu-west-1:210987654321:prod-orders-3F2A"
    assert _wire.logical_name(arn, {}) == "prod-orders-3F2A"
    assert _wire.logical_name(arn, {"prod-orders-3F2A": "orders"}) == "orders"
    assert _wire.logical_name(arn, {arn: "by-arn", "prod-orders-3F2A": "by-name"}) == "by-arn"
    assert _wire.logical_name(arn, {"other": "x"}) == "prod-orders-3F2A"
