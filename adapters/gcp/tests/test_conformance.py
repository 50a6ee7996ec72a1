"""Every native sample parses into a typed event through the entry point that receives it.

The samples are this adapter's ``tests/events/*.json``, plus every ``*.json`` in the
folders given with ``--events-dir``. A sample is delivered by its shape: a
structured CloudEvent (``specversion``) to the CloudEvent target, a push envelope
(``message`` and ``subscription``) to the HTTP target's push path, and a
``{"context", "data"}`` background event to the background target, and an HTTP
request (``method``, ``url``, ``headers`` as an object) to the HTTP target. An outside
file of none of these shapes is skipped; one of ours fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flask
import pytest
from adapters.gcp.tests.support import EVENTS, background_args, sample_kind, structured

import polyserve_gcp
from polyserve import CloudEvent, HttpRequest, Message, ScheduleEvent, StorageEvent, StreamRecord
from polyserve_gcp.testing import Targets
from polyserve_testkit.recorder import Recorder

TYPED = (CloudEvent, Message, ScheduleEvent, StorageEvent, StreamRecord)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sample_path" not in metafunc.fixturenames:
        return
    paths = sorted(EVENTS.glob("*.json"))
    for folder in metafunc.config.getoption("--events-dir"):
        paths += sorted(Path(folder).glob("*.json"))
    metafunc.parametrize("sample_path", paths, ids=[p.name for p in paths])


def test_the_adapter_has_samples_of_every_kind() -> None:
    kinds = {sample_kind(json.loads(p.read_text())) for p in EVENTS.glob("*.json")}
    assert kinds == {"cloudevent", "push", "background", "http"}


def test_sample_parses(sample_path: Path) -> None:
    sample: Any = json.loads(sample_path.read_text())
    kind = sample_kind(sample)
    if kind is None:
        if sample_path.parent == EVENTS:
            pytest.fail(f"{sample_path.name} is not a GCP delivery format")
        pytest.skip(f"{sample_path.name} is not a GCP delivery format")
    recorder = Recorder.catch_all()
    if kind == "http":
        response = Targets(recorder.app).call(sample)
        assert response is not None
        assert response.status_code == 200, response.get_data(as_text=True)
        assert isinstance(recorder.last, HttpRequest)
        return
    if kind == "cloudevent":
        polyserve_gcp.cloudevent(recorder.app)(structured(sample))
    elif kind == "background":
        polyserve_gcp.background(recorder.app)(*background_args(sample))
    else:
        with flask.Flask(__name__).test_request_context(
            "/_pubsub", method="POST", json=sample
        ) as context:
            response = polyserve_gcp.http(recorder.app)(context.request)
        assert response.status_code == 204, response.get_data(as_text=True)
    (event,) = recorder.seen
    assert isinstance(event, TYPED)
