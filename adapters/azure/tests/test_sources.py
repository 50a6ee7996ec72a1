"""Every Azure event source implements ``polyserve.adapter.Source`` with the same signatures."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from adapters.azure.tests.support import queue_message

from polyserve import App, Context, Message, Trigger, UnsupportedEventError
from polyserve.adapter import Event, run
from polyserve_azure import _sources
from polyserve_azure._identity import Identity

SOURCES = [
    _sources.QueueSource(Trigger.QUEUE, "orders"),
    _sources.ServiceBusSource(Trigger.TOPIC, "events"),
    _sources.BlobSource(Trigger.STORAGE, "uploads", "uploads"),
    _sources.TimerSource(Trigger.SCHEDULE, "tick"),
    _sources.EventHubSource(Trigger.STREAM, "telemetry"),
    _sources.KafkaSource(Trigger.STREAM, "orders", ordered=False),
    _sources.CosmosSource(Trigger.STREAM, "items", ("/tenant",)),
    _sources.EventGridSource(App("grid")),
]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: type(s).__name__)
def test_one_interface(source: Any) -> None:
    def params(name: str) -> list[str]:
        return list(inspect.signature(getattr(source, name)).parameters)

    assert params("matches") == ["raw"]
    assert params("to_event") == ["raw", "context", "names"]
    assert params("to_native") == ["outcome", "raw", "context"]
    assert source.is_http is False
    assert not source.matches(SimpleNamespace())
    with pytest.raises(UnsupportedEventError):
        source.to_event(SimpleNamespace(), Context("azure"), {})


def test_the_http_source_answers_a_request_it_cannot_read_with_a_400() -> None:
    source = _sources.HttpSource("api", Identity({}))
    assert source.is_http is True
    assert list(inspect.signature(source.to_event).parameters) == ["raw", "context", "names"]
    assert list(inspect.signature(source.to_native).parameters) == ["outcome", "raw", "context"]
    response = run(App("http"), source, SimpleNamespace(method=None), Context("azure"), {})
    assert response.status_code == 400


def test_a_source_runs_through_the_shared_entry_point() -> None:
    app, seen = App("sources"), []
    app.register(Trigger.QUEUE, "orders", lambda msg: seen.append(msg))
    source = _sources.QueueSource(Trigger.QUEUE, "orders")
    request = source.to_event(queue_message(b"{}"), Context("azure"), {})
    assert isinstance(request, Event)
    assert (request.trigger, request.name) == (Trigger.QUEUE, "orders")
    assert run(app, source, queue_message(b"{}"), Context("azure"), {}) is None
    assert isinstance(seen[0], Message)
    assert seen[0].source == "orders"
