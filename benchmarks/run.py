"""Import time and per-invocation overhead of polyserve on AWS Lambda events.

Each case runs polyserve and a hand-written minimal Lambda handler doing the
same work (parse, validate, respond) in one run, and reports the medians and
their ratio against the budget. Reports only: nothing here fails a build.

    uv run python benchmarks/run.py [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

import polyserve_aws
from polyserve import App, Context, Message

if TYPE_CHECKING:
    from collections.abc import Callable


class NewPet(BaseModel):
    name: str
    species: str
    age: int = 0


class _LambdaContext:
    aws_request_id = "req-1"
    function_name = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = "128"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "s"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def build_app() -> App:
    app = App("bench")

    @app.get("/pets/{pet_id:int}")
    def get_pet(pet_id: int) -> dict[str, Any]:
        return {"id": pet_id, "name": "Rex"}

    @app.post("/pets", status=201)
    def create_pet(pet: NewPet) -> NewPet:
        return pet

    @app.queue("orders")
    def on_order(msg: Message) -> None:
        if msg.json()["fail"]:
            raise ValueError("failed")

    return app


# -- hand-written baselines: what a careful developer writes without a library ---

_PET_PATH = re.compile(r"^/pets/(-?\d+)$")


def bare_get_v1(event: dict[str, Any], context: Any) -> dict[str, Any]:
    m = _PET_PATH.match(event["path"])
    if event["httpMethod"] != "GET" or m is None:
        return {"statusCode": 404, "body": '{"code":"not_found"}'}
    body = json.dumps({"id": int(m.group(1)), "name": "Rex"})
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body}


def bare_get_v2(event: dict[str, Any], context: Any) -> dict[str, Any]:
    m = _PET_PATH.match(event["rawPath"])
    if event["requestContext"]["http"]["method"] != "GET" or m is None:
        return {"statusCode": 404, "body": '{"code":"not_found"}'}
    body = json.dumps({"id": int(m.group(1)), "name": "Rex"})
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": body}


def bare_post(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["requestContext"]["http"]["method"] != "POST" or event["rawPath"] != "/pets":
        return {"statusCode": 404, "body": '{"code":"not_found"}'}
    try:
        pet = NewPet.model_validate_json(event["body"])
    except ValidationError as exc:
        errors = [{"loc": e["loc"], "message": e["msg"]} for e in exc.errors(include_url=False)]
        return {"statusCode": 422, "body": json.dumps({"errors": errors}, default=str)}
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/json"},
        "body": pet.model_dump_json(),
    }


def bare_sqs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        try:
            if json.loads(record["body"])["fail"]:
                raise ValueError("failed")
        except Exception:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


# -- events --------------------------------------------------------------------


def v1_get() -> dict[str, Any]:
    return {
        "resource": "/pets/{pet_id}", "path": "/pets/42", "httpMethod": "GET",
        "headers": {"Host": "api.example.com", "Accept": "application/json"},
        "multiValueHeaders": {"Host": ["api.example.com"], "Accept": ["application/json"]},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"pet_id": "42"}, "stageVariables": None,
        "requestContext": {"requestId": "r1", "stage": "prod", "identity": {"sourceIp": "203.0.113.1"},
                           "httpMethod": "GET", "path": "/prod/pets/42", "resourcePath": "/pets/{pet_id}"},
        "body": None, "isBase64Encoded": False,
    }  # fmt: skip


def v2(method: str, path: str, body: str | None = None) -> dict[str, Any]:
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "api.example.com", "content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
                           "requestId": "r2", "routeKey": "$default", "stage": "$default",
                           "time": "12/Mar/2024:19:03:58 +0000", "timeEpoch": 1710270238000,
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.1", "userAgent": "bench"}},
        "body": body, "isBase64Encoded": False,
    }  # fmt: skip


def sqs_batch(n: int = 10, failures: int = 2) -> dict[str, Any]:
    records = []
    for i in range(n):
        records.append({
            "messageId": f"m{i}", "receiptHandle": "h", "body": json.dumps({"fail": i < failures}),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1710270238000",
                           "SenderId": "s", "ApproximateFirstReceiveTimestamp": "1710270238001"},
            "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders", "awsRegion": "us-east-1",
        })  # fmt: skip
    return {"Records": records}


# -- measurement ---------------------------------------------------------------


def _time_us(fn: Callable[[], Any], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner * 1e6


def _compare(
    case: str,
    ours: Callable[[], Any],
    bare: Callable[[], Any],
    budget: float,
    rounds: int,
    inner: int,
) -> Row:
    """Time both in alternating rounds, so that load on the machine hits both alike."""
    _time_us(ours, inner)  # warm-up
    _time_us(bare, inner)
    ours_us: list[float] = []
    bare_us: list[float] = []
    ratios: list[float] = []
    for _ in range(rounds):
        a, b = _time_us(ours, inner), _time_us(bare, inner)
        ours_us.append(a)
        bare_us.append(b)
        ratios.append(a / b)
    return Row(case, statistics.median(ours_us), statistics.median(bare_us), budget,
               median_ratio=statistics.median(ratios))  # fmt: skip


@dataclass
class Row:
    case: str
    polyserve: float
    baseline: float
    budget: float
    unit: str = "µs"
    median_ratio: float | None = None

    @property
    def ratio(self) -> float:
        """The median of the per-round ratios (robust to load that changes between rounds)."""
        return (
            self.median_ratio if self.median_ratio is not None else self.polyserve / self.baseline
        )

    @property
    def ok(self) -> bool:
        return self.ratio <= self.budget


def _run_ms(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1e3


def _import_overhead_ms(code: str, runs: int) -> float:
    """Median over alternating runs of (polyserve process) - (bare ``python -c pass``).

    Bytecode is compiled first, as in any installed package (pip compiles on
    install; a deployment bundle should ship it): otherwise every run would
    measure the compiler, not the import.
    """
    import compileall
    import os

    import polyserve

    for package in (polyserve, polyserve_aws):
        compileall.compile_dir(os.path.dirname(package.__file__ or ""), quiet=1)
    return statistics.median(_run_ms(code) - _run_ms("pass") for _ in range(runs))


_IMPORT_CODE = """
import polyserve, polyserve_aws
from polyserve import App
app = App("cold")
def h(item_id: int) -> dict:
    return {"id": item_id}
for i in range(20):
    app.get(f"/r{i}/{{item_id:int}}", name=f"r{i}")(h)
handler = polyserve_aws.handler(app)
"""

# The same, then one request: what loads with the first invocation (the event
# classes, dataclasses with them, json) counted too. Reported, with no budget.
_FIRST_REQUEST_CODE = (
    _IMPORT_CODE
    + """
class Ctx:
    aws_request_id = "r"
    function_name = "f"
    def get_remaining_time_in_millis(self):
        return 3000
event = {"version": "2.0", "rawPath": "/r7/42", "rawQueryString": "",
         "headers": {"host": "example.com"},
         "requestContext": {"http": {"method": "GET", "sourceIp": "203.0.113.1"},
                            "requestId": "r1"}}
assert handler(event, Ctx())["statusCode"] == 200
"""
)


def run(rounds: int = 25, inner: int = 200) -> list[Row]:
    import logging

    logging.getLogger("polyserve").disabled = True  # measure dispatch, not log formatting
    app = build_app()
    handler = polyserve_aws.handler(app)
    ctx = _LambdaContext()
    Context("warm-up")  # the benchmark measures warm invocations

    get1, get2 = v1_get(), v2("GET", "/pets/42")
    post_ok = v2("POST", "/pets", '{"name": "Rex", "species": "dog", "age": 3}')
    post_bad = v2("POST", "/pets", '{"name": 7, "age": "old"}')
    batch = sqs_batch()
    assert handler(get1, ctx)["statusCode"] == bare_get_v1(get1, ctx)["statusCode"] == 200
    assert handler(post_bad, ctx)["statusCode"] == bare_post(post_bad, ctx)["statusCode"] == 422
    assert len(handler(batch, ctx)["batchItemFailures"]) == 2

    rows = [
        _compare("GET path param (REST v1)", lambda: handler(get1, ctx),
                 lambda: bare_get_v1(get1, ctx), 3.0, rounds, inner),
        _compare("GET path param (HTTP API v2)", lambda: handler(get2, ctx),
                 lambda: bare_get_v2(get2, ctx), 3.0, rounds, inner),
        _compare("POST pydantic, valid", lambda: handler(post_ok, ctx),
                 lambda: bare_post(post_ok, ctx), 2.5, rounds, inner),
        _compare("POST pydantic, invalid", lambda: handler(post_bad, ctx),
                 lambda: bare_post(post_bad, ctx), 2.5, rounds, inner),
        _compare("SQS batch of 10, 2 failures", lambda: handler(batch, ctx),
                 lambda: bare_sqs(batch, ctx), 1.5, rounds, inner // 4),
    ]  # fmt: skip
    overhead = _import_overhead_ms(_IMPORT_CODE, 21)
    rows.append(Row("import + 20-route app (ms over bare python)", overhead, 15.0, 1.0, "ms"))
    first = _import_overhead_ms(_FIRST_REQUEST_CODE, 21)
    rows.append(Row("... and its first request (ms over bare python)", first, 0.0, 1.0, "ms"))
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| case | polyserve | hand-written | ratio | budget | within |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        if r.unit == "ms" and not r.baseline:
            lines.append(f"| {r.case} | +{r.polyserve:.1f} ms | — | — | (reported) | — |")
        elif r.unit == "ms":
            lines.append(f"| {r.case} | +{r.polyserve:.1f} ms | — | — | ≤ +15 ms | "
                         f"{'yes' if r.polyserve <= 15 else 'NO'} |")  # fmt: skip
        else:
            lines.append(f"| {r.case} | {r.polyserve:.1f} µs | {r.baseline:.1f} µs | "
                         f"{r.ratio:.2f}× | ≤ {r.budget}× | {'yes' if r.ok else 'NO'} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args()
    rows = run(args.rounds)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.__dict__ for r in rows], f, indent=2)


if __name__ == "__main__":
    main()
