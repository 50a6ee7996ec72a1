"""Context.trace_id from ``traceparent`` and ``CF-Ray``, and ``cf_ray`` on every log line."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from polyserve import App, Context
from polyserve_cloudflare import entrypoint
from polyserve_cloudflare.testing import (
    FakeExecutionContext,
    FakeRequest,
    FakeResponse,
    FakeRuntime,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
RAY = "8f3a1b2c4d5e6f70-AMS"


def _call(headers: dict[str, str]) -> dict[str, Any]:
    app = App("traced")

    @app.get("/t")
    def traced(ctx: Context) -> dict[str, Any]:
        ctx.logger.info("seen")
        return {"trace_id": ctx.trace_id, "invocation_id": ctx.invocation_id}

    cls = entrypoint(app, runtime=FakeRuntime())
    worker = cls(FakeExecutionContext(), {})
    request = FakeRequest("GET", "https://w.example/t", list(headers.items()))
    response = asyncio.run(worker.fetch(request))
    assert isinstance(response, FakeResponse)
    assert response.status == 200
    body: dict[str, Any] = response.json()
    return body


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith("{"):
            found.append(json.loads(message))
    return found


def test_traceparent_wins_over_the_ray_id() -> None:
    body = _call({"traceparent": PARENT, "cf-ray": RAY})
    assert body == {"trace_id": TRACE, "invocation_id": RAY}


def test_the_ray_id_is_the_trace_without_traceparent() -> None:
    assert _call({"cf-ray": RAY})["trace_id"] == "8f3a1b2c4d5e6f70"


@pytest.mark.parametrize("parent", ["00-zz-00f067aa0ba902b7-01", "garbage", ""])
def test_a_malformed_traceparent_is_ignored(parent: str) -> None:
    assert _call({"traceparent": parent, "cf-ray": RAY})["trace_id"] == "8f3a1b2c4d5e6f70"
    assert _call({"traceparent": parent})["trace_id"] is None


def test_no_trace_headers_no_trace() -> None:
    body = _call({})
    assert body["trace_id"] is None
    assert body["invocation_id"]  # generated


def test_log_lines_carry_cf_ray(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        _call({"cf-ray": RAY, "traceparent": PARENT})
    seen = [line for line in _lines(caplog) if line.get("message") == "seen"]
    assert seen, caplog.text
    assert seen[0]["cf_ray"] == RAY
    assert seen[0]["trace_id"] == TRACE


def test_no_cf_ray_field_without_the_header(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        _call({})
    seen = [line for line in _lines(caplog) if line.get("message") == "seen"]
    assert seen, caplog.text
    assert "cf_ray" not in seen[0]
