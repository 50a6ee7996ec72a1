"""polyserve_gcp.testing: every built event parses through the entry point that receives it,
and has the shape of the samples shipped in ``tests/events``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from adapters.gcp.tests import test_conformance as conformance
from adapters.gcp.tests.support import EVENTS, sample_kind

from polyserve_gcp.testing import BUILDERS, build

if TYPE_CHECKING:
    from pathlib import Path

_SAMPLES = {
    "pubsub": "pubsub-message-published.json",
    "pubsub_push": "pubsub-push.json",
    "scheduler": "pubsub-scheduler-tick.json",
    "storage": "storage-finalized.json",
    "legacy_pubsub": "background-pubsub.json",
}


def _keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict) or "attributes" in prefix:
        return set()
    out = set()
    for key, item in value.items():
        out.add(prefix + key)
        out |= _keys(item, prefix + key + ".")
    return out


def test_every_kind_has_a_sample() -> None:
    assert set(_SAMPLES) == set(BUILDERS)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_built_event_parses(kind: str, tmp_path: Path) -> None:
    event = build(kind)
    sample = json.loads((EVENTS / _SAMPLES[kind]).read_text())
    assert sample_kind(event) == sample_kind(sample)
    assert _keys(event) <= _keys(sample) | {"data.message.attributes"}
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(event))
    conformance.test_sample_parses(path)


def test_overrides() -> None:
    event = build("pubsub", data={"id": 2}, topic="payments", attempt=4)
    assert event["source"].endswith("/topics/payments")
    assert event["data"]["deliveryAttempt"] == 4
    with pytest.raises(TypeError, match=r"unknown override\(s\) topc for 'pubsub'"):
        build("pubsub", topc="x")
    with pytest.raises(KeyError, match="unknown GCP event kind"):
        build("pubsub2")
