"""``@app.native()`` on GCP: event types nothing else takes, in functions-framework's form."""

from __future__ import annotations

from typing import Any

import pytest
from adapters.gcp.tests.support import background_args, load, structured

import polyserve_gcp
from polyserve import App, CloudEvent, Context
from polyserve.errors import UnsupportedEventError

CUSTOM = {"specversion": "1.0", "type": "com.example.invoice.paid", "source": "/b", "id": "7"}


def test_an_unclaimed_cloudevent_reaches_the_native_handler() -> None:
    app = App("native")
    seen: list[tuple[Any, Context]] = []

    @app.native("gcp")
    def anything(event: Any, ctx: Context) -> Any:
        seen.append((event, ctx))
        return {"seen": event["type"]}

    raw = structured(CUSTOM)
    answer = polyserve_gcp.cloudevent(app)(raw)
    assert answer == {"seen": "com.example.invoice.paid"}
    assert seen[0][0] is raw  # the SDK's CloudEvent object itself
    assert seen[0][1].provider == "gcp"
    assert seen[0][1].invocation_id == "7"


def test_a_cloudevent_registration_claims_its_type_first() -> None:
    app = App("native")
    calls: list[str] = []
    app.native()(lambda event: calls.append("native"))
    app.cloudevent("com.example.invoice.paid")(lambda event: calls.append(event.type))
    assert polyserve_gcp.cloudevent(app)(structured(CUSTOM)) is None
    assert calls == ["com.example.invoice.paid"]

    catch_all = App("catch-all")
    catch_all.native()(lambda event: calls.append("native"))
    catch_all.cloudevent("*")(lambda event: calls.append("any"))
    polyserve_gcp.cloudevent(catch_all)(structured(CUSTOM))
    assert calls[-1] == "any"


def test_a_family_event_never_reaches_it() -> None:
    app = App("native")
    calls: list[object] = []
    app.native()(calls.append)
    seen: list[object] = []
    app.storage("pet-photos-prod")(seen.append)
    polyserve_gcp.cloudevent(app)(structured(load("storage-finalized.json")))
    assert calls == []
    assert len(seen) == 1
    with pytest.raises(UnsupportedEventError):  # a Pub/Sub topic nobody registered
        polyserve_gcp.cloudevent(app)(structured(load("pubsub-message-published.json")))
    assert calls == []


def test_without_a_native_handler_it_stays_unsupported() -> None:
    other = App("other")
    other.native("aws")(lambda event: "aws only")
    with pytest.raises(UnsupportedEventError, match=r"com\.example\.invoice\.paid"):
        polyserve_gcp.cloudevent(other)(structured(CUSTOM))


def test_a_failing_native_handler_raises_for_a_retry() -> None:
    app = App("native")

    @app.native()
    def failing(event: Any) -> None:
        raise RuntimeError("retry me")

    with pytest.raises(RuntimeError, match="retry me"):
        polyserve_gcp.cloudevent(app)(structured(CUSTOM))


def test_an_unclaimed_background_event_arrives_as_the_data_context_pair() -> None:
    app = App("native")
    seen: list[Any] = []

    @app.native()
    def anything(event: Any) -> str:
        seen.append(event)
        return "done"

    data, context = background_args(load("background-firebase-auth.json"))
    assert polyserve_gcp.background(app)(data, context) == "done"
    assert seen[0][0] is data
    assert seen[0][1] is context

    typed = App("typed")
    got: list[CloudEvent] = []
    typed.native()(lambda event: pytest.fail("claimed by the typed registration"))
    typed.cloudevent("*")(got.append)
    assert polyserve_gcp.background(typed)(data, context) is None
    assert got[0].raw == (data, context)
    with pytest.raises(UnsupportedEventError):
        polyserve_gcp.background(App("none"))(data, context)
