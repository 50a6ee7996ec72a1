"""Conformance: every Workers event sample parses.

A sample is the JSON form of what the runtime hands the Worker: a ``Request``
(``method``, ``url``, ``headers`` as pairs, and ``body`` text or ``bodyBase64``),
a ``MessageBatch`` (``queue``, ``messages`` with an ISO ``timestamp``; a body of
the form ``{"$arrayBuffer": base64}`` is an ``ArrayBuffer``) or a
``ScheduledController`` (``cron``, ``scheduledTime``). Samples come from
``tests/events/`` and every ``--events-dir``; files of other shapes there are
left to the adapters they belong to.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyserve import HttpRequest, Message, ScheduleEvent
from polyserve_cloudflare import _http, _queue, _scheduled
from polyserve_cloudflare.testing import FakeBatch, FakeRequest, FakeRuntime, kind_of, native

if TYPE_CHECKING:
    import pytest

EVENTS = Path(__file__).parent / "events"


def _samples(config: pytest.Config) -> list[Path]:
    folders = [EVENTS, *(Path(d) for d in config.getoption("--events-dir"))]
    found = []
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            if kind_of(json.loads(path.read_text(encoding="utf-8"))) is not None:
                found.append(path)
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample" in metafunc.fixturenames:
        paths = _samples(metafunc.config)
        metafunc.parametrize("sample", paths, ids=[p.name for p in paths])


def parse(data: dict[str, Any]) -> HttpRequest | list[Message] | ScheduleEvent:
    raw = native(data)
    if isinstance(raw, FakeRequest):
        assert _http.is_request(raw)
        return _http.to_request(raw, asyncio.run(_http.read_body(raw)))
    if isinstance(raw, FakeBatch):
        assert _queue.is_batch(raw)
        source = _queue.source_name(raw, {})
        return [_queue.to_message(m, source, FakeRuntime()) for m in raw.messages]
    assert _scheduled.is_controller(raw)
    return _scheduled.to_schedule(raw, _scheduled.cron_of(raw))


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


def test_every_sample_parses(sample: Path) -> None:
    assert parse(json.loads(sample.read_text(encoding="utf-8")))


def test_get_sample() -> None:
    request = parse(_load("fetch-get-query.json"))
    assert isinstance(request, HttpRequest)
    assert request.path == "/pets"
    assert request.query.get_all("species") == ["cat", "dog"]
    assert request.client == "198.51.100.23"
    assert request.request_id == ""  # to_event takes the id; the entry point reads CF-Ray
    assert _http.request_id(request.raw) == "8f3a1b2c4d5e6f70-AMS"


def test_post_sample() -> None:
    request = parse(_load("fetch-post-json.json"))
    assert isinstance(request, HttpRequest)
    assert request.path == "/pets/été/adopt"
    assert request.json() == {"name": "Rex", "species": "dog", "age": 3}
    assert request.cookies == {"session": "abc123", "theme": "dark"}
    assert request.headers["x-request-source"] == "mobile, web"


def test_binary_sample() -> None:
    request = parse(_load("fetch-put-binary.json"))
    assert isinstance(request, HttpRequest)
    assert request.body.startswith(b"\x89PNG")


def test_queue_sample() -> None:
    messages = parse(_load("queue-mixed-bodies.json"))
    assert isinstance(messages, list)
    assert [m.body for m in messages] == [
        b'{"pet_id":7,"adopter":"Ada"}',
        b"plain text body",
        b"\x00\x01\x02\xff",
        b"[1,2.5,null,true]",
    ]
    assert [m.attempt for m in messages] == [1, 2, 4, 1]
    assert messages[0].source == "adoptions"
    assert messages[0].enqueued_at == dt.datetime(
        2025, 6, 1, 9, 15, 2, 481000, tzinfo=dt.timezone.utc
    )


def test_scheduled_sample() -> None:
    event = parse(_load("scheduled-nightly.json"))
    assert isinstance(event, ScheduleEvent)
    assert event.scheduled_at == dt.datetime(2025, 6, 1, 3, 0, tzinfo=dt.timezone.utc)
