"""Idempotency keys are scoped to the caller: a stored response never reaches another caller."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from polyserve import App, Context, Headers, HttpError, HttpRequest, HttpResponse, Message, Trigger
from polyserve.errors import ConfigurationError
from polyserve.idempotency import REPLAYED_HEADER, MemoryStore, idempotent
from polyserve.identity import Principal


def _ctx(principal: Principal | None = None) -> Context:
    ctx = Context("test", invocation_id="inv", function_name="fn")
    ctx.principal = principal
    return ctx


ALICE = Principal("alice", "test.idp", {"email": "alice@example.com"})
BOB = Principal("bob", "test.idp", {"email": "bob@example.com"})


def _post(
    body: Any, *, key: str | None = None, authorization: str | None = None, path: str = "/pay"
) -> HttpRequest:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["idempotency-key"] = key
    if authorization is not None:
        headers["authorization"] = authorization
    return HttpRequest("POST", path, headers=Headers(headers), body=json.dumps(body).encode())


def _account_app(store: MemoryStore, **options: Any) -> tuple[App, list[str]]:
    """A route whose response is personal: it names the caller who made it."""
    app = App("bank")
    runs: list[str] = []

    @app.post("/pay")
    @idempotent(store, **options)
    def pay(body: dict[str, int], ctx: Context) -> HttpResponse:
        who = ctx.principal.id if ctx.principal is not None else "anonymous"
        runs.append(who)
        return HttpResponse.json({"caller": who, "run": len(runs), "amount": body["amount"]})

    return app, runs


def _body(response: HttpResponse) -> Any:
    return json.loads(response.body)


@pytest.mark.parametrize("mode", ["header", "auto"])
def test_two_callers_with_one_key_get_a_run_each_and_only_their_own_replay(mode: str) -> None:
    app, runs = _account_app(MemoryStore(), mode=mode)
    request = _post({"amount": 5}, key="same-key")
    alice_first = app.handle_http(request, _ctx(ALICE))
    bob_first = app.handle_http(request, _ctx(BOB))
    alice_again = app.handle_http(request, _ctx(ALICE))
    bob_again = app.handle_http(request, _ctx(BOB))
    assert runs == ["alice", "bob"]
    assert _body(alice_first)["caller"] == _body(alice_again)["caller"] == "alice"
    assert _body(bob_first)["caller"] == _body(bob_again)["caller"] == "bob"
    assert alice_again.headers.get(REPLAYED_HEADER) == "true"
    assert bob_again.body == bob_first.body


def test_auto_mode_same_body_without_key_is_scoped_too() -> None:
    app, runs = _account_app(MemoryStore())
    request = _post({"amount": 7})
    assert _body(app.handle_http(request, _ctx(ALICE)))["caller"] == "alice"
    assert _body(app.handle_http(request, _ctx(BOB)))["caller"] == "bob"
    assert _body(app.handle_http(request, _ctx(BOB)))["caller"] == "bob"
    assert runs == ["alice", "bob"]


def test_one_caller_repeating_a_key_runs_once() -> None:
    app, runs = _account_app(MemoryStore(), mode="header")
    responses = [app.handle_http(_post({"amount": 1}, key="k"), _ctx(ALICE)) for _ in range(3)]
    assert runs == ["alice"]
    assert {r.body for r in responses} == {responses[0].body}


def test_the_principal_source_is_part_of_the_scope() -> None:
    app, runs = _account_app(MemoryStore(), mode="header")
    elsewhere = Principal("alice", "other.idp")
    app.handle_http(_post({"amount": 1}, key="k"), _ctx(ALICE))
    app.handle_http(_post({"amount": 1}, key="k"), _ctx(elsewhere))
    assert runs == ["alice", "alice"]


def test_different_authorization_headers_without_principal_run_separately() -> None:
    app, runs = _account_app(MemoryStore())
    first = app.handle_http(_post({"amount": 2}, authorization="Bearer token-a"), _ctx())
    second = app.handle_http(_post({"amount": 2}, authorization="Bearer token-b"), _ctx())
    again = app.handle_http(_post({"amount": 2}, authorization="Bearer token-a"), _ctx())
    assert runs == ["anonymous", "anonymous"]
    assert _body(first)["run"] == 1
    assert _body(second)["run"] == 2
    assert again.body == first.body


def test_the_store_never_holds_the_raw_authorization_value() -> None:
    store = MemoryStore()
    app, _ = _account_app(store, mode="header")
    app.handle_http(_post({"amount": 2}, key="k", authorization="Bearer s3cr3t-token"), _ctx())
    keys = list(store._records)
    assert len(keys) == 1
    assert "s3cr3t" not in keys[0]
    assert keys[0].endswith("#k")
    assert "@" in keys[0]


def test_the_in_progress_409_holds_within_one_caller_only() -> None:
    app = App("slow")
    entered, release = threading.Event(), threading.Event()

    @app.post("/pay")
    @idempotent(MemoryStore(), mode="header")
    def pay(body: dict[str, int]) -> dict[str, int]:
        entered.set()
        assert release.wait(5)
        return {"paid": body["amount"]}

    request = _post({"amount": 3}, key="k-409")
    done: list[HttpResponse] = []
    thread = threading.Thread(target=lambda: done.append(app.handle_http(request, _ctx(ALICE))))
    thread.start()
    try:
        assert entered.wait(5)
        busy = app.handle_http(request, _ctx(ALICE))
        assert busy.status == 409
        assert _body(busy)["code"] == "in_progress"
    finally:
        release.set()
        thread.join(5)
    assert done[0].status == 200
    # Another caller's request was never blocked by Alice's: it ran on its own.
    entered.clear()
    release.set()
    assert app.handle_http(request, _ctx(BOB)).status == 200


def test_the_payload_mismatch_422_is_unchanged() -> None:
    app, runs = _account_app(MemoryStore(), mode="header")
    app.handle_http(_post({"amount": 1}, key="k-422"), _ctx(ALICE))
    mismatch = app.handle_http(_post({"amount": 2}, key="k-422"), _ctx(ALICE))
    assert mismatch.status == 422
    assert _body(mismatch)["code"] == "payload_mismatch"
    # The same key with another payload from another caller is simply a new request.
    assert app.handle_http(_post({"amount": 2}, key="k-422"), _ctx(BOB)).status == 200
    assert runs == ["alice", "bob"]


def test_an_unscoped_function_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    app, runs = _account_app(MemoryStore(), mode="header")
    with caplog.at_level(logging.WARNING, logger="polyserve"):
        for key in ("a", "b", "a"):
            app.handle_http(_post({"amount": 1}, key=key), _ctx())
    warnings = [r for r in caplog.records if "not scoped to a caller" in r.getMessage()]
    assert len(warnings) == 1
    assert "bank" in warnings[0].getMessage() or "pay" in warnings[0].getMessage()
    assert runs == ["anonymous", "anonymous"]


def test_scoped_calls_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = _account_app(MemoryStore(), mode="header")
    with caplog.at_level(logging.WARNING, logger="polyserve"):
        app.handle_http(_post({"amount": 1}, key="a"), _ctx(ALICE))
        app.handle_http(_post({"amount": 1}, key="b", authorization="Basic eDp5"), _ctx())
    assert not [r for r in caplog.records if "not scoped" in r.getMessage()]


def test_global_scope_shares_keys_between_callers_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, runs = _account_app(MemoryStore(), mode="header", scope="global")
    with caplog.at_level(logging.WARNING, logger="polyserve"):
        first = app.handle_http(_post({"amount": 1}, key="g"), _ctx(ALICE))
        second = app.handle_http(_post({"amount": 1}, key="g"), _ctx(BOB))
        app.handle_http(_post({"amount": 1}, key="h"), _ctx())
    assert runs == ["alice", "anonymous"]
    assert second.body == first.body
    assert not [r for r in caplog.records if "not scoped" in r.getMessage()]


def test_a_scope_function_gets_the_request_and_context() -> None:
    seen: list[tuple[str, str]] = []

    def by_tenant(request: HttpRequest, ctx: Context) -> str:
        seen.append((request.path, ctx.invocation_id))
        return request.headers.get("x-tenant", "")

    app, runs = _account_app(MemoryStore(), mode="header", scope=by_tenant)
    for tenant in ("t1", "t2", "t1"):
        request = _post({"amount": 1}, key="k")
        request = HttpRequest(
            "POST", "/pay", headers=request.headers.with_set("x-tenant", tenant), body=request.body
        )
        app.handle_http(request, _ctx())
    assert runs == ["anonymous", "anonymous"]
    assert seen == [("/pay", "inv")] * 3


def test_a_scope_function_may_return_a_principal_or_none() -> None:
    app, runs = _account_app(MemoryStore(), mode="header", scope=lambda request, ctx: ALICE)
    app.handle_http(_post({"amount": 1}, key="k"), _ctx(BOB))
    app.handle_http(_post({"amount": 1}, key="k"), _ctx())
    assert runs == ["bob"]
    shared, shared_runs = _account_app(MemoryStore(), mode="header", scope=lambda r, c: None)
    shared.handle_http(_post({"amount": 1}, key="k"), _ctx(ALICE))
    shared.handle_http(_post({"amount": 1}, key="k"), _ctx(BOB))
    assert shared_runs == ["alice"]


def test_a_scope_function_that_refuses_the_caller_stops_replays() -> None:
    def authenticate(request: HttpRequest, ctx: Context) -> Principal:
        if request.headers.get("authorization") != "Bearer good":
            raise HttpError(401, "invalid_token", "no", headers={"www-authenticate": "Bearer"})
        ctx.principal = ALICE
        return ALICE

    app, runs = _account_app(MemoryStore(), mode="header", scope=authenticate)
    ok = app.handle_http(_post({"amount": 1}, key="k", authorization="Bearer good"), _ctx())
    refused = app.handle_http(_post({"amount": 1}, key="k", authorization="Bearer bad"), _ctx())
    missing = app.handle_http(_post({"amount": 1}, key="k"), _ctx())
    assert ok.status == 200
    for response in (refused, missing):
        assert response.status == 401
        assert response.headers.get("www-authenticate") == "Bearer"
        assert "caller" not in _body(response)
    assert runs == ["alice"]


def test_a_scope_function_returning_another_type_is_a_configuration_error() -> None:
    app, runs = _account_app(MemoryStore(), mode="header", scope=lambda r, c: 42)
    response = app.handle_http(_post({"amount": 1}, key="k"), _ctx())
    assert response.status == 500
    assert runs == []


@pytest.mark.parametrize("bad", ["user", "", None, 3])
def test_scope_must_be_caller_global_or_a_function(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="scope"):
        idempotent(scope=bad)


def test_events_keep_their_global_keys_by_default() -> None:
    app = App("events")
    runs: list[str] = []

    @app.queue("orders")
    @idempotent(MemoryStore())
    def on_order(msg: Message) -> None:
        runs.append(msg.id)

    for principal in (ALICE, BOB):
        app.handle_event(Trigger.QUEUE, "orders", Message(id="m-1", body=b"{}"), _ctx(principal))
    assert runs == ["m-1"]


def test_events_are_scoped_by_a_scope_function() -> None:
    app = App("events")
    runs: list[str] = []

    @app.queue("orders")
    @idempotent(MemoryStore(), scope=lambda msg, ctx: msg.attributes.get("tenant"))
    def on_order(msg: Message) -> None:
        runs.append(msg.attributes["tenant"])

    for tenant in ("t1", "t2", "t1"):
        message = Message(id="m-1", body=b"{}", attributes={"tenant": tenant})
        app.handle_event(Trigger.QUEUE, "orders", message, _ctx())
    assert runs == ["t1", "t2"]


def test_plain_functions_get_the_arguments_and_no_context() -> None:
    seen: list[Any] = []

    def scope(arguments: Any, ctx: Any) -> str:
        seen.append((dict(arguments), ctx))
        return str(arguments["user"])

    calls: list[str] = []

    @idempotent(scope=scope)
    def charge(user: str, amount: int) -> int:
        calls.append(user)
        return amount

    assert charge("u1", 5) == 5
    assert charge("u2", 5) == 5
    assert charge("u1", 5) == 5
    assert calls == ["u1", "u2"]
    assert seen[0] == ({"user": "u1", "amount": 5}, None)


def test_a_handler_that_declares_the_request_keeps_its_request_hash_and_scope() -> None:
    app = App("raw")
    runs: list[str] = []

    @app.post("/raw")
    @idempotent(MemoryStore())
    def raw(request: HttpRequest, ctx: Context) -> dict[str, str]:
        runs.append(ctx.principal.id if ctx.principal else "-")
        return {"n": str(len(runs))}

    body = {"amount": 1}
    for principal in (ALICE, ALICE, BOB):
        app.handle_http(_post(body, path="/raw"), _ctx(principal))
    assert runs == ["alice", "bob"]
