"""The petstore example on AWS: its SAM template, and its handler under the real runtime."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from polyserve_testkit.lambda_runtime import LambdaRuntime

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLE = Path(__file__).parents[3] / "examples" / "petstore"
TEMPLATE = EXAMPLE / "template.yaml"


def _require(module: str) -> None:
    """Skip when ``module`` is missing, or fail under ``CI=true`` where it must be there."""
    if importlib.util.find_spec(module) is not None:
        return
    reason = f"{module} is not installed; install the test dependency group (uv sync)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _cfn_lint(template: Path) -> list[str]:
    """What ``cfn-lint template`` reports, one line per finding (none: the template passes).

    Its Python API, with the command line's defaults: the same rules and findings, without
    a process that imports cfn-lint again for each template.
    """
    _require("cfnlint")
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    return [
        f"{match.linenumber}:{match.rule.id}:{match.message}"
        for match in lint_file(template, config=ManualArgs())
    ]


def test_template_passes_cfn_lint() -> None:
    findings = _cfn_lint(TEMPLATE)

    assert findings == []


def test_cfn_lint_does_check_serverless_resources(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    text = TEMPLATE.read_text()
    broken.write_text(text.replace("Handler: lambda_function.handler", "Handlr: lambda.handler"))

    findings = _cfn_lint(broken)

    assert findings != []
    assert any("Handlr" in finding for finding in findings), findings


def _template() -> dict[str, Any]:
    _require("cfnlint")
    # cfn-lint ships without type information.
    from cfnlint.decode import decode  # type: ignore[import-untyped]

    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert template is not None
    return dict(template)


def _app() -> Any:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from petstore.app import app
    finally:
        sys.path.remove(str(EXAMPLE))
    return app


def test_template_declares_everything_the_app_registers() -> None:
    resources = _template()["Resources"]
    events = list(resources["PetstoreFunction"]["Properties"]["Events"].values())
    http = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in events
        if e["Type"] == "HttpApi"
    }
    app = _app()

    for route in app.routes:
        path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
        for method in route.methods:
            assert (method, path) in http, f"{method} {path} has no HttpApi event"
    for reg in app.registrations:
        if reg.trigger.value == "queue":
            (sqs,) = [e for e in events if e["Type"] == "SQS"]
            assert sqs["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert resources["AdoptionsQueue"]["Properties"]["QueueName"] == reg.name
        elif reg.trigger.value == "schedule":
            (schedule,) = [e for e in events if e["Type"] == "ScheduleV2"]
            assert schedule["Properties"]["Name"] == reg.name
            assert json.loads(schedule["Properties"]["Input"])["polyserve_schedule"] == reg.name
            minute, hour, dom, month, dow = reg.options["cron"].split()
            assert schedule["Properties"]["ScheduleExpression"] == (
                f"cron({minute} {hour} {dom} {month} {'?' if dow == '*' else dow} *)"
            )
        else:
            pytest.fail(f"the template has nothing for {reg.trigger.value} {reg.name!r}")


# -- the handler under AWS's runtime interface client ---------------------------------


@pytest.fixture(scope="module")
def runtime() -> Iterator[LambdaRuntime]:
    _require("awslambdaric")
    with LambdaRuntime(
        "lambda_function.handler", task_root=EXAMPLE, function_name="petstore"
    ) as rt:
        yield rt


def _v2_get(path: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "210987654321",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
            },
            "requestId": "v2-get",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1714557600000,
        },
        "isBase64Encoded": False,
    }


def _v1_post(path: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": "v1-post",
            "identity": {"sourceIp": "192.0.2.2"},
            "httpMethod": "POST",
            "stage": "prod",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "handle-" + message_id,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1714557600000"},
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:210987654321:adoptions",
        "awsRegion": "us-east-1",
    }


@pytest.mark.integration
def test_example_under_the_lambda_runtime(runtime: LambdaRuntime) -> None:
    health = runtime.invoke(_v2_get("/health"))
    assert health.ok, health.payload
    assert health.payload["statusCode"] == 200
    assert json.loads(health.payload["body"]) == {"status": "ok"}
    assert health.payload["headers"]["content-type"] == "application/json"

    created = runtime.invoke(_v1_post("/pets", {"name": "Tom", "species": "cat", "age": 3}))
    assert created.ok, created.payload
    assert created.payload["statusCode"] == 201
    assert "multiValueHeaders" in created.payload
    pet = json.loads(created.payload["body"])
    assert (pet["name"], pet["species"], pet["age"], pet["adopted"]) == ("Tom", "cat", 3, False)

    invalid = runtime.invoke(_v1_post("/pets", {"name": "", "species": "cat"}))
    assert invalid.payload["statusCode"] == 422
    assert invalid.payload["headers"]["content-type"] == "application/problem+json"

    batch = {
        "Records": [
            _sqs_record("good", json.dumps({"pet_id": pet["id"], "adopter": "Ada"})),
            _sqs_record("unknown-pet", json.dumps({"pet_id": 999_999, "adopter": "Bob"})),
            _sqs_record("not-json", "adopt please"),
        ]
    }
    result = runtime.invoke(batch)
    assert result.ok, result.payload
    assert result.payload == {
        "batchItemFailures": [{"itemIdentifier": "unknown-pet"}, {"itemIdentifier": "not-json"}]
    }

    fetched = runtime.invoke(_v2_get(f"/pets/{pet['id']}"))
    assert fetched.payload["statusCode"] == 200
    assert json.loads(fetched.payload["body"])["adopted"] is True

    missing = runtime.invoke(_v2_get("/pets/424242"))
    assert missing.payload["statusCode"] == 404
    assert json.loads(missing.payload["body"])["code"] == "pet_not_found"


@pytest.mark.integration
def test_example_schedule_and_unknown_events(runtime: LambdaRuntime) -> None:
    report = runtime.invoke({"polyserve_schedule": "nightly-report"})
    assert report.ok, report.payload
    assert report.payload is None

    unknown = runtime.invoke({"triggerSource": "PreSignUp_SignUp", "userName": "ada"})
    assert not unknown.ok
    assert unknown.error_type == "UnsupportedEventError"
