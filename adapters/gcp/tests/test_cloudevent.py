"""The CloudEvent target: other types as CloudEvent, errors, and functions-framework's answers."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest
from adapters.gcp.tests.support import load, structured

import polyserve_gcp
from polyserve import App, CloudEvent, Context
from polyserve.errors import MalformedEventError, UnsupportedEventError
from polyserve_gcp import _cloudevent
from polyserve_gcp._context import make_context

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import flask
    import flask.testing

    from polyserve_testkit.recorder import Recorder

CTX = make_context(App("t"), "", 60, None)


def test_other_types_become_cloud_events(recorder: Recorder) -> None:
    raw = structured(load("audit-log-written.json"))

    polyserve_gcp.cloudevent(recorder.app)(raw)

    event = recorder.last
    assert isinstance(event, CloudEvent)
    assert event.id == "projects/petstore-prod/logs/cloudaudit.googleapis.com%2Factivity-1a2b3c"
    assert event.type == "google.cloud.audit.log.v1.written"
    assert event.source == "//cloudaudit.googleapis.com/projects/petstore-prod/logs/activity"
    assert event.subject == "storage.googleapis.com/projects/_/buckets/pet-photos-prod"
    assert event.time == dt.datetime(2024, 5, 1, 10, 0, 1, 500000, tzinfo=dt.timezone.utc)
    assert event.datacontenttype == "application/json; charset=utf-8"
    assert event.dataschema is not None
    assert event.dataschema.endswith("LogEntryData.json")
    assert event.specversion == "1.0"
    assert event.extensions == {
        "servicename": "storage.googleapis.com",
        "methodname": "storage.buckets.create",
        "resourcename": "projects/_/buckets/pet-photos-prod",
    }
    assert event.json()["severity"] == "NOTICE"
    assert event.raw is raw


def test_a_type_registration_comes_before_the_catch_all() -> None:
    seen: list[str] = []
    app = App("t")
    app.cloudevent("google.cloud.audit.log.v1.written")(lambda event: seen.append("exact"))
    app.cloudevent("*")(lambda event: seen.append("any"))
    target = polyserve_gcp.cloudevent(app)
    target(structured(load("audit-log-written.json")))
    target(structured({"specversion": "1.0", "type": "com.example.x", "source": "/s", "id": "1"}))
    assert seen == ["exact", "any"]


def test_an_unregistered_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedEventError, match=r"com\.example\.x"):
        polyserve_gcp.cloudevent(App("t"))(
            structured({"specversion": "1.0", "type": "com.example.x", "source": "/s", "id": "1"})
        )


class FakeEvent:
    """An object of the CloudEventLike shape, for attribute combinations the SDK fills in."""

    def __init__(self, attributes: Mapping[str, Any], data: Any = None) -> None:
        self.attributes = dict(attributes)
        self.data = data

    def get_attributes(self) -> Mapping[str, Any]:
        return self.attributes

    def get_data(self) -> Any:
        return self.data


def test_a_datetime_time_and_absent_optional_attributes() -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    dispatch = _cloudevent.to_event(
        FakeEvent({"id": "1", "source": "/s", "type": "t", "time": when}), CTX, {}
    )
    event = dispatch.event
    assert isinstance(event, CloudEvent)
    assert (event.time, event.subject, event.datacontenttype, event.data) == (
        when,
        None,
        None,
        None,
    )
    assert event.specversion == "1.0"


@pytest.mark.parametrize(
    "attributes",
    [
        {"source": "/s", "type": "t"},
        {"id": "1", "type": "t"},
        {"id": "1", "source": "/s", "type": 5},
        {"id": "1", "source": "/s", "type": "t", "time": "whenever"},
        {"id": "1", "source": "/s", "type": "t", "subject": 3},
    ],
)
def test_missing_or_wrong_attributes_are_malformed(attributes: dict[str, Any]) -> None:
    with pytest.raises(MalformedEventError):
        _cloudevent.CloudEventSource(App("t")).to_event(FakeEvent(attributes), CTX, {})


def test_an_object_of_an_unexpected_shape_is_malformed_not_a_crash() -> None:
    class Broken(FakeEvent):
        def get_data(self) -> Any:
            raise KeyError("data")

    event = Broken({"id": "1", "source": "//storage.googleapis.com/x", "type": "google.cloud."
                    "storage.object.v1.finalized"})  # fmt: skip
    with pytest.raises(MalformedEventError, match="cannot read"):
        _cloudevent.CloudEventSource(App("t")).to_event(event, CTX, {})


def test_event_context(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTION_TIMEOUT_SEC", "300")
    monkeypatch.setenv("K_SERVICE", "reports")
    seen: list[Context] = []
    app = App("t")

    def on_any(event: CloudEvent, ctx: Context) -> None:
        seen.append(ctx)

    app.cloudevent("*")(on_any)
    raw = structured(load("audit-log-written.json"))
    polyserve_gcp.cloudevent(app, timeout=10)(raw)
    (ctx,) = seen
    assert ctx.provider == "gcp"
    assert ctx.invocation_id == raw.get_attributes()["id"]
    assert ctx.function_name == "reports"
    assert ctx.raw is raw
    remaining = ctx.remaining_time()
    assert remaining is not None
    assert 290 < remaining <= 300


# -- under functions-framework, in process ---------------------------------------

SOURCE = """
    import polyserve_gcp
    from polyserve import App, Message

    app = App("inproc")

    @app.topic("orders")
    def on_order(message: Message) -> None:
        if message.text == "boom":
            raise RuntimeError("handler failed")

    handle_event = polyserve_gcp.cloudevent(app)
    handle_background = polyserve_gcp.background(app)
"""


@pytest.fixture
def framework(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A factory for functions-framework's own Flask app over SOURCE, with state restored."""
    from functions_framework import create_app

    source = tmp_path / "gcp_inproc_main.py"
    source.write_text(textwrap.dedent(SOURCE))
    # create_app writes these and extends sys.path and sys.modules; undo it afterwards.
    monkeypatch.setenv("FUNCTION_TARGET", "")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "gcp_inproc_main", None)

    def make(target: str, signature: str) -> flask.testing.FlaskClient:
        # create_app has no annotations; it returns a flask.Flask here (no @aio target).
        app: flask.Flask = create_app(target, str(source), signature)  # type: ignore[no-untyped-call]
        return app.test_client()

    return make


def pubsub(text: str, topic: str = "orders") -> dict[str, Any]:
    import base64

    return {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/projects/p/topics/{topic}",
        "id": "ev-1",
        "datacontenttype": "application/json",
        "data": {"message": {"data": base64.b64encode(text.encode()).decode(), "messageId": "1"}},
    }


def post_structured(client: flask.testing.FlaskClient, event: dict[str, Any]) -> Any:
    return client.post(
        "/", data=json.dumps(event), headers={"content-type": "application/cloudevents+json"}
    )


def test_functions_framework_answers_200_on_success(framework: Any) -> None:
    response = post_structured(framework("handle_event", "cloudevent"), pubsub("ok"))
    assert response.status_code == 200


def test_functions_framework_answers_500_when_the_handler_fails(framework: Any) -> None:
    response = post_structured(framework("handle_event", "cloudevent"), pubsub("boom"))
    assert response.status_code == 500


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (pubsub("ok", topic="payments"), "unsupported_event"),
        ({**pubsub("ok"), "data": {"message": {"data": "%%", "messageId": "1"}}}, "invalid_base64"),
    ],
)
def test_functions_framework_answers_400_for_rejected_events(
    framework: Any, event: dict[str, Any], code: str
) -> None:
    response = post_structured(framework("handle_event", "cloudevent"), event)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.get_json()["code"] == code


def test_a_rejected_binary_event_names_its_id(framework: Any) -> None:
    event = pubsub("ok", topic="payments")
    headers = {f"ce-{k}": v for k, v in event.items() if k not in ("data", "datacontenttype")}
    response = framework("handle_event", "cloudevent").post(
        "/", data=json.dumps(event["data"]), headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["invocation_id"] == "ev-1"


def test_entry_points_built_outside_functions_framework_register_nothing() -> None:
    # No Flask app context here: building a target must neither fail nor need one.
    assert callable(polyserve_gcp.cloudevent(App("t")))
    assert callable(polyserve_gcp.background(App("t")))
