"""Conformance: every native sample decodes through the worker's converter and then polyserve's.

A sample is ``{"binding": <trigger type>, "data": <datum>, "metadata": {<name>: <datum>},
"expect": {...}}``, where a datum is what the host sends the worker (see
``support.datum``). ``--events-dir`` adds the samples of outside folders; a JSON file
there without a ``binding`` key belongs to another provider and is skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.azure.tests.support import EVENTS, InvocationContext, decode

from polyserve import Context, Headers, HttpRequest, QueryParams
from polyserve_azure import (
    _blob,
    _cosmos,
    _eventgrid,
    _eventhub,
    _http,
    _kafka,
    _queue,
    _servicebus,
    _timer,
)

if TYPE_CHECKING:
    import pytest


def _is_azure_sample(path: Path) -> bool:
    # Outside folders hold every provider's samples; only Azure's are collected here.
    try:
        sample = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(sample, dict) and "binding" in sample


def _sample_paths(config: pytest.Config) -> list[Path]:
    paths = sorted(EVENTS.glob("*.json"))
    for folder in config.getoption("--events-dir"):
        paths.extend(p for p in sorted(Path(folder).rglob("*.json")) if _is_azure_sample(p))
    return paths


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample_path" in metafunc.fixturenames:
        paths = _sample_paths(metafunc.config)
        metafunc.parametrize("sample_path", paths, ids=[p.name for p in paths])


def _translate(binding: str, native: Any, ctx: Context) -> list[object]:
    if binding == "httpTrigger":
        return [_http.read(native, ctx, route_prefix="api")]
    if binding == "queueTrigger":
        return [_queue.read(native, ctx, source="q")]
    if binding == "serviceBusTrigger":
        return [_servicebus.read(native, ctx, source="sb")]
    if binding == "eventHubTrigger":
        return [_eventhub.read(e, i, source="hub") for i, e in enumerate(native)]
    if binding == "kafkaTrigger":
        batch = _kafka.records(native)
        return [_kafka.read(e, i, source="topic") for i, e in enumerate(batch)]
    if binding == "cosmosDBTrigger":
        return [_cosmos.read(d, source="items") for d in native]
    if binding == "blobTrigger":
        return [_blob.read(native, ctx, container=native.name.split("/", 1)[0])]
    if binding == "timerTrigger":
        return [_timer.read(native, ctx, name="tick")]
    if binding == "eventGridTrigger":
        cloud = _eventgrid.read(native, ctx)
        return [_eventgrid.storage_change(cloud) or cloud]
    raise AssertionError(f"no converter for {binding}")


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (QueryParams, Headers)):
        return value.to_multi_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _field(event: Any, name: str) -> Any:
    if name == "kind":
        return type(event).__name__
    if name == "text":
        return event.body.decode()
    if name == "body_base64":
        return base64.b64encode(event.body).decode()
    return _plain(getattr(event, name))


def test_sample_parses(sample_path: Path) -> None:
    sample = json.loads(sample_path.read_text())
    assert isinstance(sample, dict), sample_path
    assert "binding" in sample, sample_path
    native = decode(sample["binding"], sample["data"], sample.get("metadata"))
    ctx = Context("azure", invocation_id=InvocationContext().invocation_id)
    events = _translate(sample["binding"], native, ctx)
    assert events
    expect = dict(sample.get("expect", {}))
    count = expect.pop("count", None)
    if count is not None:
        assert len(events) == count
    actual = {name: _field(events[0], name) for name in expect}
    assert actual == expect
    assert all(getattr(e, "raw", None) is not None for e in events)


def test_the_http_sample_keeps_the_request_id_of_the_invocation() -> None:
    sample = json.loads((EVENTS / "http-get-query.json").read_text())
    native = decode(sample["binding"], sample["data"])
    request = _http.read(native, Context("azure", invocation_id="abc"), route_prefix="api")
    assert isinstance(request, HttpRequest)
    assert request.request_id == "abc"
    assert request.headers.get("accept") == "application/json, text/plain"
