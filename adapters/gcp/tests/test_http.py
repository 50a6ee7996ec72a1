"""The HTTP target: Flask request -> HttpRequest -> Flask response, push and scheduler paths."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import flask
import pytest
from adapters.gcp.tests.support import load
from pydantic import BaseModel

import polyserve_gcp
from polyserve import App, Context, Headers, HttpResponse, Message, ScheduleEvent
from polyserve.errors import ConfigurationError
from polyserve_gcp import _http

if TYPE_CHECKING:
    from polyserve_gcp.types import HttpFunction
    from polyserve_testkit.recorder import Recorder

FLASK = flask.Flask(__name__)


def call(target: HttpFunction, path: str, **kwargs: Any) -> flask.Response:
    """Run ``target`` on a request Werkzeug builds, as functions-framework would."""
    with FLASK.test_request_context(path, **kwargs):
        return target(flask.request)


def problem(response: flask.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body = json.loads(response.get_data())
    assert isinstance(body, dict)
    return body


def test_request_becomes_an_http_request(recorder: Recorder) -> None:
    response = call(
        polyserve_gcp.http(recorder.app),
        "/pets/caf%C3%A9%20au%20lait/%3F?tag=a&tag=b&q=x%26y&empty",
        method="PUT",
        data=b"\x00\x01binary",
        headers=[
            ("Content-Type", "application/octet-stream"),
            ("X-Forwarded-For", "203.0.113.7, 10.0.0.1"),
            ("Function-Execution-Id", "exec-42"),
            ("Cookie", "a=1; b=2"),
        ],
    )
    assert response.status_code == 200
    request = recorder.last
    assert request.method == "PUT"
    assert request.path == "/pets/café au lait/?"
    assert request.query.get_all("tag") == ["a", "b"]
    assert request.query["q"] == "x&y"
    assert request.query["empty"] == ""
    assert request.body == b"\x00\x01binary"
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.cookies == {"a": "1", "b": "2"}
    assert request.client == "203.0.113.7"
    assert request.request_id == "exec-42"
    assert request.path_params == {"rest": "pets/café au lait/?"}
    assert isinstance(request.raw, flask.Request)


def test_client_falls_back_to_the_peer_address(recorder: Recorder) -> None:
    call(polyserve_gcp.http(recorder.app), "/x", environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert recorder.last.client == "198.51.100.9"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Function-Execution-Id": "exec-1", "X-Cloud-Trace-Context": "t/1;o=1"}, "exec-1"),
        (
            {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b120001000/1;o=1"},
            "105445aa7843bc8bf206b120001000",
        ),
    ],
)
def test_request_id_sources(headers: dict[str, str], expected: str) -> None:
    assert _http.request_id(Headers(headers)) == expected


def test_request_id_is_generated_when_absent() -> None:
    first, second = _http.request_id(Headers()), _http.request_id(Headers())
    assert len(first) == 32
    assert first != second


def test_context_of_an_http_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SERVICE", "pets")
    seen: list[Context] = []
    app = App("t")

    def read(context: Context) -> None:
        seen.append(context)

    app.add_route("/read", read)
    call(polyserve_gcp.http(app, timeout=90), "/read", headers={"Function-Execution-Id": "e-7"})
    (context,) = seen
    assert (context.provider, context.invocation_id, context.function_name) == (
        "gcp",
        "e-7",
        "pets",
    )
    assert isinstance(context.raw, flask.Request)
    remaining = context.remaining_time()
    assert remaining is not None
    assert 80 < remaining <= 90


def test_response_keeps_status_repeated_headers_and_body() -> None:
    app = App("t")

    @app.get("/cookies")
    def cookies() -> HttpResponse:
        response = HttpResponse.text("made", 201).set_cookie("a", "1").set_cookie("b", "2")
        return response.with_header("x-multi", "one").with_header("x-multi", "two")

    response = call(polyserve_gcp.http(app), "/cookies")
    assert response.status_code == 201
    assert response.get_data() == b"made"
    assert response.headers.getlist("set-cookie") == [
        "a=1; HttpOnly; Path=/; SameSite=Lax; Secure",
        "b=2; HttpOnly; Path=/; SameSite=Lax; Secure",
    ]
    assert response.headers.getlist("x-multi") == ["one", "two"]
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "4"


def test_no_default_content_type_is_added() -> None:
    app = App("t")
    app.delete("/pets/1")(lambda: None)
    response = call(polyserve_gcp.http(app), "/pets/1", method="DELETE")
    assert response.status_code == 204
    assert "content-type" not in response.headers


def test_head_keeps_the_get_length() -> None:
    app = App("t")
    app.get("/big")(lambda: "x" * 50)
    response = call(polyserve_gcp.http(app), "/big", method="HEAD")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["content-length"] == "50"


def test_app_errors_are_problem_responses(recorder: Recorder) -> None:
    app = App("t")
    response = call(polyserve_gcp.http(app), "/nowhere", headers={"Function-Execution-Id": "e1"})
    assert response.status_code == 404
    assert problem(response)["invocation_id"] == "e1"


# -- Pub/Sub push -------------------------------------------------------------


def push(target: HttpFunction, body: Any, path: str = "/_pubsub", **kwargs: Any) -> flask.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call(target, path, method="POST", data=data, content_type="application/json", **kwargs)


def test_push_envelope_goes_to_the_queue_handler_and_answers_204() -> None:
    seen: list[Message] = []
    app = App("t")
    app.queue("invoices-push")(lambda message: seen.append(message))

    response = push(polyserve_gcp.http(app), load("pubsub-push.json"))

    assert response.status_code == 204
    (msg,) = seen
    assert msg.id == "2070443601311540"
    assert msg.body == bytes([0, 159, 146, 150, 255])
    assert msg.attributes == {"origin": "billing"}
    assert msg.attempt == 2
    assert msg.enqueued_at == dt.datetime(2024, 5, 1, 12, 30, 45, 500000, tzinfo=dt.timezone.utc)
    assert msg.source == "invoices-push"
    assert isinstance(msg.raw, flask.Request)


@pytest.mark.parametrize(
    "path", ["/_pubsub/invoices", "/_pubsub/projects/petstore-prod/topics/invoices"]
)
def test_the_topic_can_follow_the_push_path(path: str) -> None:
    seen: list[Message] = []
    app = App("t")
    app.topic("invoices")(lambda message: seen.append(message))
    assert push(polyserve_gcp.http(app), load("pubsub-push.json"), path).status_code == 204
    assert seen[0].source == "invoices"


def test_push_to_a_scheduler_topic_is_a_schedule_event() -> None:
    seen: list[ScheduleEvent] = []
    app = App("t")
    app.schedule("cleanup", cron="0 * * * *", topic="hourly")(lambda tick: seen.append(tick))
    envelope = {
        "message": {"data": "", "messageId": "77"},
        "subscription": "projects/p/subscriptions/s",
    }
    assert push(polyserve_gcp.http(app), envelope, "/_pubsub/hourly").status_code == 204
    assert seen[0].name == "cleanup"
    assert seen[0].payload is None


def test_a_failing_push_handler_answers_500_so_pubsub_redelivers() -> None:
    app = App("t")

    @app.queue("invoices-push")
    def fail(message: Message) -> None:
        raise RuntimeError("secret database password in the message")

    response = push(polyserve_gcp.http(app), load("pubsub-push.json"))
    assert response.status_code == 500
    body = problem(response)
    assert body["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        ({"hello": "world"}, 400, "malformed_event"),
        (
            {"message": {"data": "!!", "messageId": "1"}, "subscription": "invoices-push"},
            400,
            "invalid_base64",
        ),
        (
            {"message": {"messageId": "1"}, "subscription": "projects/p/subscriptions/other"},
            400,
            "unsupported_event",
        ),
    ],
)
def test_rejected_pushes_answer_4xx(body: Any, status: int, code: str) -> None:
    app = App("t")
    app.queue("invoices-push")(lambda message: None)
    response = push(polyserve_gcp.http(app), body)
    assert response.status_code == status
    assert problem(response)["code"] == code


class Invoice(BaseModel):
    amount: int


def test_payload_validation_failure_is_422() -> None:
    app = App("t")

    @app.queue("invoices-push")
    def on_invoice(invoice: Invoice) -> None:
        raise AssertionError("not reached")

    envelope = {"message": {"data": "eyJhbW91bnQiOiAidGVuIn0=", "messageId": "1"},
                "subscription": "projects/p/subscriptions/invoices-push"}  # fmt: skip
    response = push(polyserve_gcp.http(app), envelope)
    assert response.status_code == 422
    assert problem(response)["code"] == "validation_error"


def test_only_post_reaches_the_adapter_paths() -> None:
    target = polyserve_gcp.http(App("t"))
    for path in ("/_pubsub", "/_scheduler/x"):
        response = call(target, path, method="GET")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


def test_adapter_paths_can_be_given_back_to_the_app(recorder: Recorder) -> None:
    target = polyserve_gcp.http(recorder.app, push_path=None, schedule_path=None)
    assert push(target, load("pubsub-push.json")).status_code == 200
    assert recorder.last.path == "/_pubsub"


def test_adapter_paths_can_move(recorder: Recorder) -> None:
    target = polyserve_gcp.http(recorder.app, push_path="/hooks/pubsub")
    assert push(target, load("pubsub-push.json"), "/hooks/pubsub").status_code == 204
    assert isinstance(recorder.last, Message)
    assert push(target, load("pubsub-push.json"), "/hooks/pubsubx").status_code == 200


@pytest.mark.parametrize("path", ["_pubsub", "/_pubsub/", ""])
def test_bad_adapter_paths_are_configuration_errors(path: str) -> None:
    with pytest.raises(ConfigurationError):
        polyserve_gcp.http(App("t"), push_path=path)


# -- Cloud Scheduler over HTTP ------------------------------------------------


def scheduler_headers(**extra: str) -> dict[str, str]:
    return {
        "X-CloudScheduler": "true",
        "User-Agent": "Google-Cloud-Scheduler",
        "X-CloudScheduler-ScheduleTime": "2024-05-02T03:00:00.000Z",
        **extra,
    }


def schedule_app(seen: list[ScheduleEvent]) -> App:
    app = App("t")
    app.schedule("nightly-report", cron="0 3 * * *")(lambda tick: seen.append(tick))
    return app


def test_scheduler_job_named_in_the_path() -> None:
    seen: list[ScheduleEvent] = []
    response = call(
        polyserve_gcp.http(schedule_app(seen)),
        "/_scheduler/nightly-report",
        method="POST",
        data=b'{"scope": "all"}',
        headers=scheduler_headers(**{"Function-Execution-Id": "run-1"}),
    )
    assert response.status_code == 204
    (tick,) = seen
    assert tick.id == "run-1"
    assert tick.name == "nightly-report"
    assert tick.scheduled_at == dt.datetime(2024, 5, 2, 3, tzinfo=dt.timezone.utc)
    assert tick.payload == {"scope": "all"}
    assert isinstance(tick.raw, flask.Request)


@pytest.mark.parametrize(
    "job", ["nightly-report", "projects/petstore-prod/locations/europe-west1/jobs/nightly-report"]
)
def test_scheduler_job_named_by_its_header(job: str) -> None:
    seen: list[ScheduleEvent] = []
    headers = scheduler_headers(**{"X-CloudScheduler-JobName": job})
    response = call(
        polyserve_gcp.http(schedule_app(seen)), "/_scheduler", method="POST", headers=headers
    )
    assert response.status_code == 204
    assert seen[0].name == "nightly-report"
    assert seen[0].payload is None


def test_scheduler_names_are_mapped() -> None:
    seen: list[ScheduleEvent] = []
    target = polyserve_gcp.http(schedule_app(seen), names={"report-job-prod": "nightly-report"})
    headers = scheduler_headers(**{"X-CloudScheduler-JobName": "report-job-prod"})
    assert call(target, "/_scheduler", method="POST", headers=headers).status_code == 204
    assert seen[0].name == "nightly-report"


@pytest.mark.parametrize(
    ("path", "headers", "code"),
    [
        ("/_scheduler", scheduler_headers(), "malformed_event"),
        ("/_scheduler/unknown", scheduler_headers(), "unsupported_event"),
        (
            "/_scheduler/nightly-report",
            scheduler_headers(**{"X-CloudScheduler-ScheduleTime": "3am"}),
            "malformed_event",
        ),
    ],
)
def test_rejected_scheduler_calls_answer_400(path: str, headers: dict[str, str], code: str) -> None:
    response = call(polyserve_gcp.http(schedule_app([])), path, method="POST", headers=headers)
    assert response.status_code == 400
    assert problem(response)["code"] == code


@pytest.mark.parametrize("path", ["/pets%2F1", "/files/%FF%FE", "/a/%zz", "/a/%2e%2e"])
def test_paths_the_rule_refuses_are_400_as_sent_whatever_the_server_decoded(
    recorder: Recorder, path: str
) -> None:
    response = call(polyserve_gcp.http(recorder.app), path)
    assert response.status_code == 400
    assert problem(response)["code"] == "invalid_path"
    assert recorder.seen == []


def test_the_raw_uri_is_the_path_as_sent(recorder: Recorder) -> None:
    target = polyserve_gcp.http(recorder.app)
    # gunicorn's RAW_URI: PATH_INFO (what Werkzeug's request.path reads) has lost the
    # difference between %2F and a slash, and turned %FF into U+FFFD.
    call(target, "/a/100%25%20x", environ_overrides={"RAW_URI": "/a/100%25%20x?q=1"})
    assert recorder.last.path == "/a/100% x"
    refused = call(target, "/pets/1", environ_overrides={"RAW_URI": "/pets%2F1"})
    assert refused.status_code == 400


def test_without_a_raw_uri_the_server_decoded_path_is_used(recorder: Recorder) -> None:
    target = polyserve_gcp.http(recorder.app)
    call(target, "/a/b", environ_overrides={"RAW_URI": None, "REQUEST_URI": None})
    assert recorder.last.path == "/a/b"
    call(target, "/a/c", environ_overrides={"SCRIPT_NAME": "/mounted"})
    assert recorder.last.path == "/a/c"
