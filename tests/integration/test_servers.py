"""Each server fixture in polyserve_testkit.servers starts a server that does its job."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from polyserve_testkit.servers import skip_or_fail

if TYPE_CHECKING:
    from pathlib import Path

    from polyserve_testkit.servers import AzuriteServer, DynamoDBServer, GcloudEmulator, RedisServer

pytestmark = pytest.mark.integration


def request(method: str, url: str, body: object = None) -> tuple[int, str, bytes]:
    """Send one request with http.client, which ignores proxy settings; return status,
    Server header and body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, target, payload, headers)
        response = connection.getresponse()
        return response.status, response.getheader("Server", ""), response.read()
    finally:
        connection.close()


def test_redis_server_stores_values(redis_server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping()
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
    finally:
        client.close()


def test_dynamodb_server_stores_items(dynamodb_server: DynamoDBServer) -> None:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_server.endpoint_url,
        region_name=dynamodb_server.region,
        aws_access_key_id=dynamodb_server.access_key_id,
        aws_secret_access_key=dynamodb_server.secret_access_key,
    )
    table = f"items-{uuid.uuid4().hex}"
    client.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # A new table is CREATING for a moment (dynalite answers so even with createTableMs 0):
    # wait for it as a client does, polling every 50 ms for at most 10 s.
    deadline = time.monotonic() + 10
    description = client.describe_table(TableName=table)["Table"]
    while description.get("TableStatus") == "CREATING" and time.monotonic() < deadline:
        time.sleep(0.05)
        description = client.describe_table(TableName=table)["Table"]
    assert description.get("TableStatus") == "ACTIVE"

    client.put_item(TableName=table, Item={"pk": {"S": "one"}, "n": {"N": "1"}})
    item = client.get_item(TableName=table, Key={"pk": {"S": "one"}}, ConsistentRead=True)

    assert item["Item"] == {"pk": {"S": "one"}, "n": {"N": "1"}}
    client.delete_table(TableName=table)
    client.close()


@pytest.mark.parametrize(
    ("service", "listing"), [("blob", "?comp=list"), ("queue", "?comp=list"), ("table", "/Tables")]
)
def test_azurite_endpoints_answer(azurite: AzuriteServer, service: str, listing: str) -> None:
    endpoint = getattr(azurite, f"{service}_endpoint")
    assert f"{service.capitalize()}Endpoint={endpoint};" in azurite.connection_string

    # Unsigned, so refused; the Server header shows which Azurite service answered.
    status, server, _ = request("GET", endpoint + listing)

    assert status == 403
    assert server.startswith(f"Azurite-{service.capitalize()}/")


def test_firestore_emulator_stores_documents(firestore_emulator: GcloudEmulator) -> None:
    documents = (
        f"{firestore_emulator.url}/v1/projects/{firestore_emulator.project_id}"
        "/databases/(default)/documents"
    )
    fields = {"n": {"integerValue": "1"}}
    name = uuid.uuid4().hex

    created, _, _ = request("POST", f"{documents}/things?documentId={name}", {"fields": fields})
    status, _, body = request("GET", f"{documents}/things/{name}")

    assert (created, status) == (200, 200)
    assert json.loads(body)["fields"] == fields


def test_pubsub_emulator_creates_topics(pubsub_emulator: GcloudEmulator) -> None:
    topic = f"projects/{pubsub_emulator.project_id}/topics/t-{uuid.uuid4().hex}"

    status, _, body = request("PUT", f"{pubsub_emulator.url}/v1/{topic}", {})

    assert status == 200
    assert json.loads(body)["name"] == topic


def test_pyodide_dir_holds_the_runtime(pyodide_dir: Path, node_modules_dir: Path) -> None:
    package = json.loads((pyodide_dir / "package.json").read_text())

    assert pyodide_dir.parent == node_modules_dir
    assert package["version"] == "0.28.2"
    assert (pyodide_dir / "pyodide.asm.wasm").is_file()


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [("true", pytest.fail.Exception), (None, pytest.skip.Exception)],
)
def test_missing_server_fails_only_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: type[BaseException]
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome, match="no such server"):
        skip_or_fail("no such server")
