"""API Gateway WebSocket APIs: typed connect/message/disconnect events, answers, replies."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from adapters.aws.tests.support import FakeLambdaContext, load
from pydantic import BaseModel

import polyserve_aws
from polyserve import App, Context, HttpResponse, WebSocketAction, WebSocketEvent
from polyserve.errors import ConfigurationError, UnsupportedEventError
from polyserve_aws import websocket

if TYPE_CHECKING:
    from collections.abc import Iterator

    from polyserve_testkit.servers import MotoServer

UTC = dt.timezone.utc


def test_connect(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    seen: list[WebSocketEvent] = []

    @app.websocket("$connect")
    def connect(event: WebSocketEvent) -> HttpResponse:
        seen.append(event)
        return HttpResponse.empty(200, {"sec-websocket-protocol": "kennel.v2"})

    raw = load("websocket-connect.json")
    out = polyserve_aws.handler(app)(raw, lambda_context)

    (event,) = seen
    assert event.action is WebSocketAction.CONNECT
    assert event.route == "$connect"
    assert event.connection_id == "Pz8kQennelAbC="
    assert event.headers["sec-websocket-protocol"] == "kennel.v1, kennel.v2"
    assert event.query["kennel"] == "3"
    assert event.client == "203.0.113.44"
    assert event.request_id == "Kx1AbCkennelConn="
    assert event.source == "k3nn3l9ws1"
    assert event.endpoint == "https://k3nn3l9ws1.execute-api.ca-central-1.amazonaws.com/live"
    assert event.connected_at == dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert event.body == b""
    assert event.raw is raw
    assert out == {"statusCode": 200, "headers": {"sec-websocket-protocol": "kennel.v2"}}


def test_connect_refused_with_a_status(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    app.websocket("$connect")(lambda event: HttpResponse.text("no token", status=401))
    out = polyserve_aws.handler(app)(load("websocket-connect.json"), lambda_context)
    assert out["statusCode"] == 401
    assert out["body"] == "no token"


class Bark(BaseModel):
    action: str
    times: int


def test_message_with_a_validated_body_and_a_json_reply(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    seen: list[Bark] = []

    @app.websocket("bark")
    def bark(payload: Bark, event: WebSocketEvent) -> dict[str, Any]:
        seen.append(payload)
        assert event.action is WebSocketAction.MESSAGE
        return {"woof": payload.times}

    out = polyserve_aws.handler(app)(load("websocket-message.json"), lambda_context)
    assert seen == [Bark(action="bark", times=3)]
    assert out == {"statusCode": 200, "body": '{"woof":3}'}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, {"statusCode": 200}),
        ("plain", {"statusCode": 200, "body": "plain"}),
        (b"\xff\x00", {"statusCode": 200, "body": "/wA=", "isBase64Encoded": True}),
        (b"text", {"statusCode": 200, "body": "text", "isBase64Encoded": False}),
        ([1, 2], {"statusCode": 200, "body": "[1,2]"}),
    ],
)
def test_answers(lambda_context: FakeLambdaContext, result: Any, expected: Any) -> None:
    app = App("kennel")
    app.websocket()(lambda event: result)
    assert polyserve_aws.handler(app)(load("websocket-message.json"), lambda_context) == expected


def test_disconnect_and_a_base64_body(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    seen: list[WebSocketEvent] = []
    app.websocket("*")(seen.append)
    handler = polyserve_aws.handler(app)
    handler(load("websocket-disconnect.json"), lambda_context)
    assert seen[0].action is WebSocketAction.DISCONNECT
    assert seen[0].disconnect_reason == "Going away"
    assert seen[0].occurred_at == dt.datetime(2024, 5, 1, 10, 5, tzinfo=UTC)

    raw = load("websocket-message.json")
    raw.update(body=base64.b64encode(b"\x01\x02").decode(), isBase64Encoded=True)
    handler(raw, lambda_context)
    assert seen[1].body == b"\x01\x02"


def test_no_handler_for_the_route_is_unsupported(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    app.websocket("$connect")(lambda event: None)
    with pytest.raises(UnsupportedEventError):
        polyserve_aws.handler(app)(load("websocket-message.json"), lambda_context)


@pytest.mark.parametrize(
    "change",
    [
        {"connectionId": 5},
        {"routeKey": None},
        {"connectedAt": "soon"},
        {"domainName": ["x"]},
    ],
)
def test_malformed_events_get_a_400_reply(
    lambda_context: FakeLambdaContext, change: dict[str, Any]
) -> None:
    app = App("kennel")
    calls: list[object] = []
    app.websocket()(calls.append)
    raw = load("websocket-message.json")
    raw["requestContext"].update(change)
    out = polyserve_aws.handler(app)(raw, lambda_context)
    assert calls == []
    assert out["statusCode"] == 400
    assert json.loads(out["body"])["code"] == "malformed_event"


def test_a_body_that_is_not_base64_gets_a_400(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    app.websocket()(lambda event: None)
    raw = load("websocket-message.json")
    raw["isBase64Encoded"] = True
    out = polyserve_aws.handler(app)(raw, lambda_context)
    assert out["statusCode"] == 400
    assert json.loads(out["body"])["code"] == "invalid_base64"


def test_an_unsendable_result_is_a_configuration_error(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    app.websocket()(lambda event: object())
    with pytest.raises(ConfigurationError):
        polyserve_aws.handler(app)(load("websocket-message.json"), lambda_context)


# -- replies through the management API ----------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, bytes, dict[str, str]]]
    status = 200

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        self.calls.append((self.command, self.path, body, dict(self.headers.items())))
        self.send_response(self.status)
        if self.status == 410:
            payload = b'{"message": "gone"}'
            self.send_header("x-amzn-errortype", "GoneException")
        else:
            payload = b""
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"calls": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "ca-central-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setattr(websocket, "_clients", {})
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/live", handler
    finally:
        server.shutdown()
        server.server_close()


def _event(endpoint: str) -> WebSocketEvent:
    return WebSocketEvent(
        action=WebSocketAction.MESSAGE, connection_id="Pz8kQennelAbC=", route="$default",
        endpoint=endpoint,
    )  # fmt: skip


def test_send_posts_the_bytes_to_the_connection(loopback: tuple[str, type[_Recorder]]) -> None:
    endpoint, recorder = loopback
    event = _event(endpoint)
    websocket.send(event, {"woof": 3})
    websocket.send(event, "hi", connection_id="Other=")
    websocket.send(event, b"\x00\xff")
    websocket.close(event)

    methods = [(c[0], c[1]) for c in recorder.calls]
    assert methods == [
        ("POST", "/live/@connections/Pz8kQennelAbC%3D"),
        ("POST", "/live/@connections/Other%3D"),
        ("POST", "/live/@connections/Pz8kQennelAbC%3D"),
        ("DELETE", "/live/@connections/Pz8kQennelAbC%3D"),
    ]
    assert [c[2] for c in recorder.calls[:3]] == [b'{"woof":3}', b"hi", b"\x00\xff"]
    authorization = recorder.calls[0][3]["Authorization"]
    assert "/ca-central-1/execute-api/aws4_request" in authorization  # SigV4 for the API
    assert len(websocket._clients) == 1  # one client per endpoint, made on first use


def test_a_gone_connection_is_a_typed_error(loopback: tuple[str, type[_Recorder]]) -> None:
    endpoint, recorder = loopback
    recorder.status = 410
    with pytest.raises(websocket.ConnectionGoneError) as info:
        websocket.send(_event(endpoint), "late")
    assert info.value.code == "connection_gone"
    recorder.status = 500
    with pytest.raises(websocket.WebSocketSendError):
        websocket.send(_event(endpoint), "broken")


def test_an_event_without_an_endpoint_needs_one() -> None:
    with pytest.raises(ConfigurationError, match="endpoint"):
        websocket.send(WebSocketEvent(WebSocketAction.MESSAGE, "c", "$default"), "x")


def test_send_through_moto_server(moto_server: MotoServer) -> None:
    import boto3

    make: Any = boto3.client  # its overloads do not take a ** mapping
    client = make("apigatewaymanagementapi", **moto_server.client_options)
    event = _event("https://unused.example/live")
    websocket.send(event, {"woof": 1}, client=client)
    connection = client.get_connection(ConnectionId=event.connection_id)
    assert "ConnectedAt" in connection
    websocket.close(event, client=client)


def test_a_connect_authorizer_gives_the_principal(lambda_context: FakeLambdaContext) -> None:
    app = App("kennel")
    seen: list[Any] = []

    @app.websocket("bark")
    def bark(event: WebSocketEvent, ctx: Context) -> None:
        seen.append(ctx.principal)

    raw = load("websocket-message.json")
    raw["requestContext"]["authorizer"] = {"principalId": "walker-7", "kennel": "3"}
    polyserve_aws.handler(app)(raw, lambda_context)
    assert (seen[0].id, seen[0].source, seen[0].claims) == (
        "walker-7",
        "aws.lambda",
        {"kennel": "3"},
    )
