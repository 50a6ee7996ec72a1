"""The generated FunctionApp: which functions, triggers, bindings and settings, and their context."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from adapters.azure.tests.support import (
    InvocationContext,
    assert_worker_accepts,
    bindings,
    call,
    functions,
    http_request,
    queue_message,
    trigger,
)

import polyserve_azure
from polyserve import App, ConfigurationError, Context, Message, Trigger

if TYPE_CHECKING:
    from azure.functions.decorators.function_app import Function

    from polyserve_testkit.recorder import Recorder


def _app(*registrations: tuple[Trigger, str, dict[str, Any]]) -> App:
    app = App("config")
    for kind, name, options in registrations:
        app.register(kind, name, lambda event: None, **options)
    return app


def _functions(app: App, **kwargs: Any) -> dict[str, Function]:
    return functions(polyserve_azure.function_app(app, **kwargs))


def test_it_returns_a_real_function_app(recorder: Recorder) -> None:
    assert isinstance(polyserve_azure.function_app(recorder.app), func.FunctionApp)


def test_one_function_per_route_set_registration_and_event_grid(
    fns: dict[str, Function],
) -> None:
    kinds = {name: trigger(fn)["type"] for name, fn in fns.items()}
    assert kinds == {
        "http": "httpTrigger",
        "queue_orders": "queueTrigger",
        "servicebus_jobs": "serviceBusTrigger",
        "topic_events_billing": "serviceBusTrigger",
        "eventhub_telemetry": "eventHubTrigger",
        "cosmos_items": "cosmosDBTrigger",
        "blob_uploads": "blobTrigger",
        "schedule_tick": "timerTrigger",
        "eventgrid": "eventGridTrigger",
    }


@pytest.mark.parametrize(
    "name",
    [
        "http",
        "queue_orders",
        "servicebus_jobs",
        "topic_events_billing",
        "eventhub_telemetry",
        "cosmos_items",
        "blob_uploads",
        "schedule_tick",
        "eventgrid",
    ],
)
def test_the_worker_would_load_every_function(fns: dict[str, Function], name: str) -> None:
    assert_worker_accepts(fns[name])


def test_the_http_function_is_a_catch_all_for_every_method(fns: dict[str, Function]) -> None:
    assert bindings(fns["http"]) == [
        {
            "direction": "IN",
            "type": "httpTrigger",
            "name": "req",
            "methods": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
            "authLevel": "ANONYMOUS",
            "route": "{*path}",
        },
        {"direction": "OUT", "type": "http", "name": "$return"},
    ]


def test_route_and_auth_level_are_configurable() -> None:
    app = App("http")
    app.get("/x")(lambda: "x")
    fns = _functions(app, http_route="svc/{*rest}", auth_level="Function")
    assert trigger(fns["http"])["route"] == "svc/{*rest}"
    assert trigger(fns["http"])["authLevel"] == "FUNCTION"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"auth_level": "public"},
        {"http_route": "/api/{*path}"},
        {"http_route": ""},
        {"function_timeout": 0},
        {"connections": {"rabbitmq": "RabbitConn"}},
        {"connections": {"storage": ""}},
        {"names": {"orders-prod": 7}},
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        polyserve_azure.function_app(App("bad"), **kwargs)


def test_an_app_without_routes_gets_no_http_function() -> None:
    fns = _functions(_app((Trigger.QUEUE, "orders", {})))
    assert set(fns) == {"queue_orders"}


def test_default_connection_settings(fns: dict[str, Function]) -> None:
    connections = {name: trigger(fn).get("connection") for name, fn in fns.items()}
    assert connections == {
        "http": None,
        "queue_orders": "AzureWebJobsStorage",
        "servicebus_jobs": "ServiceBusConnection",
        "topic_events_billing": "ServiceBusConnection",
        "eventhub_telemetry": "EventHubConnection",
        "cosmos_items": "CosmosDBConnection",
        "blob_uploads": "AzureWebJobsStorage",
        "schedule_tick": None,
        "eventgrid": None,
    }
    assert polyserve_azure.DEFAULT_CONNECTIONS["storage"] == "AzureWebJobsStorage"


def test_connections_by_service_and_by_registration() -> None:
    app = _app(
        (Trigger.QUEUE, "orders", {}),
        (Trigger.QUEUE, "audit", {"connection": "AuditStorage"}),
        (Trigger.STREAM, "clicks", {}),
    )
    fns = _functions(app, connections={"storage": "MainStorage", "eventhub": "Hubs"})
    assert trigger(fns["queue_orders"])["connection"] == "MainStorage"
    assert trigger(fns["queue_audit"])["connection"] == "AuditStorage"
    assert trigger(fns["eventhub_clicks"])["connection"] == "Hubs"


def test_queues_bind_binary_bodies(fns: dict[str, Function]) -> None:
    for name in ("queue_orders", "servicebus_jobs", "topic_events_billing", "eventhub_telemetry"):
        assert trigger(fns[name])["dataType"] == "BINARY"


def test_service_bus_options() -> None:
    app = _app(
        (Trigger.QUEUE, "jobs", {"service": "servicebus", "sessions": True}),
        (Trigger.TOPIC, "events", {"subscription": "audit"}),
    )
    fns = _functions(app)
    assert trigger(fns["servicebus_jobs"])["queueName"] == "jobs"
    assert trigger(fns["servicebus_jobs"])["isSessionsEnabled"] is True
    topic = trigger(fns["topic_events_audit"])
    assert (topic["topicName"], topic["subscriptionName"]) == ("events", "audit")
    assert "isSessionsEnabled" not in topic


@pytest.mark.parametrize(
    "registration",
    [
        (Trigger.TOPIC, "events", {}),
        (Trigger.TOPIC, "events", {"subscription": ""}),
        (Trigger.TOPIC, "events", {"subscription": "s", "service": "storage"}),
        (Trigger.QUEUE, "orders", {"service": "sqs"}),
        (Trigger.QUEUE, "*", {}),
        (Trigger.QUEUE, "jobs", {"service": "servicebus", "sessions": "yes"}),
        (Trigger.QUEUE, "orders", {"connection": 3}),
        (Trigger.STREAM, "items", {"service": "cosmosdb"}),
        (Trigger.STREAM, "items", {"service": "cosmosdb", "database": "d", "partition_key": 5}),
        (Trigger.STREAM, "clicks", {"service": "kinesis"}),
        (Trigger.STREAM, "clicks", {"max_retries": -2}),
        (Trigger.STREAM, "clicks", {"window": True}),
        (Trigger.STORAGE, "*", {}),
        (Trigger.SCHEDULE, "nightly", {}),
        (Trigger.SCHEDULE, "nightly", {"rate": "7 minutes"}),
        (Trigger.SCHEDULE, "*", {"rate": "1 hour"}),
    ],
    ids=str,
)
def test_registrations_azure_cannot_deploy_are_configuration_errors(
    registration: tuple[Trigger, str, dict[str, Any]],
) -> None:
    with pytest.raises(ConfigurationError):
        polyserve_azure.function_app(_app(registration))


def test_event_hub_options_and_retry_policy() -> None:
    app = _app(
        (Trigger.STREAM, "clicks", {"consumer_group": "polyserve"}),
        (Trigger.STREAM, "audit", {"max_retries": -1}),
        (Trigger.STREAM, "debug", {"max_retries": 0}),
    )
    fns = _functions(app)
    clicks = trigger(fns["eventhub_clicks"])
    assert (clicks["eventHubName"], clicks["cardinality"]) == ("clicks", "MANY")
    assert clicks["consumerGroup"] == "polyserve"
    assert fns["eventhub_clicks"].get_settings_dict("retry_policy") == {
        "setting_name": "retry_policy",
        "strategy": "exponential_backoff",
        "max_retry_count": "5",
        "minimum_interval": "00:00:04",
        "maximum_interval": "00:15:00",
    }
    audit = fns["eventhub_audit"].get_settings_dict("retry_policy")
    assert audit is not None
    assert audit["max_retry_count"] == "-1"
    assert fns["eventhub_debug"].get_settings_dict("retry_policy") is None


def test_cosmos_options() -> None:
    app = _app(
        (Trigger.STREAM, "items", {"service": "cosmosdb", "database": "shop"}),
        (
            Trigger.STREAM,
            "orders",
            {
                "service": "cosmosdb",
                "database": "shop",
                "connection": "ShopCosmos",
                "lease_container": "order-leases",
                "create_lease_container": False,
            },
        ),
    )
    fns = _functions(app)
    items = trigger(fns["cosmos_items"])
    assert (items["databaseName"], items["containerName"]) == ("shop", "items")
    assert (items["leaseContainerName"], items["createLeaseContainerIfNotExists"]) == (
        "leases",
        True,
    )
    orders = trigger(fns["cosmos_orders"])
    assert orders["connection"] == "ShopCosmos"
    assert (orders["leaseContainerName"], orders["createLeaseContainerIfNotExists"]) == (
        "order-leases",
        False,
    )
    assert fns["cosmos_items"].get_settings_dict("retry_policy") is not None


def test_storage_actions_decide_blob_trigger_and_event_grid() -> None:
    created = _functions(_app((Trigger.STORAGE, "in", {"actions": frozenset({"created"})})))
    assert set(created) == {"blob_in"}
    assert trigger(created["blob_in"])["path"] == "in/{name}"

    deleted = _functions(_app((Trigger.STORAGE, "gone", {"actions": frozenset({"deleted"})})))
    assert set(deleted) == {"eventgrid"}

    both = _functions(
        _app((Trigger.STORAGE, "all", {"actions": frozenset({"created", "deleted"})}))
    )
    assert set(both) == {"blob_all", "eventgrid"}

    via_grid = _functions(_app((Trigger.STORAGE, "*", {"blob_trigger": False})))
    assert set(via_grid) == {"eventgrid"}


def test_names_map_native_entities_to_one_registration() -> None:
    app = _app((Trigger.QUEUE, "orders", {}), (Trigger.STORAGE, "uploads", {}))
    fns = _functions(
        app,
        names={"orders-eu": "orders", "orders-us": "orders", "uploads-prod-2024": "uploads"},
    )
    assert trigger(fns["queue_orders-eu"])["queueName"] == "orders-eu"
    assert trigger(fns["queue_orders-us"])["queueName"] == "orders-us"
    assert trigger(fns["blob_uploads-prod-2024"])["path"] == "uploads-prod-2024/{name}"


def test_function_names_are_sanitised_and_unique() -> None:
    app = _app(
        (Trigger.QUEUE, "orders.v1", {}),
        (Trigger.QUEUE, "orders_v1", {}),
        (Trigger.QUEUE, "Orders:V1", {}),
        (Trigger.SCHEDULE, "every day/at 3", {"cron": "0 3 * * *"}),
        (Trigger.QUEUE, "q" * 300, {}),
    )
    names = list(_functions(app))
    assert names[:4] == [
        "queue_orders_v1",
        "queue_orders_v1_2",
        "queue_Orders_V1_3",
        "schedule_every_day_at_3",
    ]
    assert len(names[4]) == 127


def test_the_context_carries_the_invocation_and_a_deadline() -> None:
    app = App("ctx")
    seen: list[Context] = []

    @app.queue("orders")
    def on_order(msg: Message, ctx: Context) -> None:
        seen.append(ctx)

    fns = _functions(app, function_timeout=120)
    before = time.time()
    call(fns["queue_orders"], queue_message(b"x"), invocation_id="inv-42")
    ctx = seen[0]
    assert (ctx.provider, ctx.invocation_id, ctx.function_name) == ("azure", "inv-42", "generated")
    assert isinstance(ctx.raw, InvocationContext)
    assert ctx.deadline is not None
    assert before + 119 <= ctx.deadline <= time.time() + 120

    no_deadline = _functions(app, function_timeout=None)
    no_deadline["queue_orders"].get_user_function()(queue_message(b"y"))
    assert seen[1].deadline is None
    assert (seen[1].invocation_id, seen[1].function_name) == ("", "queue_orders")


def test_http_function_runs_without_an_azure_context() -> None:
    app = App("local")
    app.get("/ping")(lambda: "pong")
    fn = _functions(app)["http"].get_user_function()
    response = fn(http_request("GET", "https://local/api/ping"))
    assert (response.status_code, response.get_body()) == (200, b"pong")


def _run(code: str) -> list[str]:
    script = (
        textwrap.dedent(code)
        + "\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('azure'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_adapter_imports_no_azure_sdk() -> None:
    code = """
    import polyserve_azure
    for name in polyserve_azure.__all__:
        getattr(polyserve_azure, name)
    """
    assert _run(code) == []


def test_building_the_app_is_what_imports_azure_functions() -> None:
    code = """
    import polyserve, polyserve_azure
    polyserve_azure.function_app(polyserve.App("x"))
    """
    assert "azure.functions" in _run(code)


def test_a_missing_sdk_is_a_missing_dependency_error() -> None:
    code = """
    sys.modules["azure.functions"] = None
    import polyserve, polyserve_azure
    try:
        polyserve_azure.function_app(polyserve.App("x"))
    except polyserve.MissingDependencyError as exc:
        assert isinstance(exc, ImportError) and exc.package == "azure-functions", exc
        print("missing", file=sys.stderr)
    """
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stderr.strip() == "missing"


def test_exports_are_listed_once_and_resolvable() -> None:
    assert len(polyserve_azure.__all__) == len(set(polyserve_azure.__all__))
    assert set(polyserve_azure.__all__) == set(polyserve_azure._EXPORTS)
    for name in polyserve_azure.__all__:
        assert getattr(polyserve_azure, name) is not None
    assert set(dir(polyserve_azure)) >= set(polyserve_azure.__all__)
    with pytest.raises(AttributeError, match="not_a_name"):
        getattr(polyserve_azure, "not_a_name")  # noqa: B009  # the lookup itself is under test


def test_an_http_deadline_is_never_past_azures_request_limit() -> None:
    app = App("slow")
    seen: list[Context] = []

    @app.get("/slow")
    def slow(ctx: Context) -> str:
        seen.append(ctx)
        return "done"

    for timeout in (600.0, None, 30.0):
        fn = _functions(app, function_timeout=timeout)["http"]
        call(fn, http_request("GET", "https://h/api/slow"))
    assert all(ctx.deadline is not None for ctx in seen)
    limits = [ctx.remaining_time() or 0.0 for ctx in seen]
    assert 225 < limits[0] <= 230
    assert 225 < limits[1] <= 230
    assert 25 < limits[2] <= 30


def test_native_and_websocket_registrations_get_no_function() -> None:
    app = _app(
        (Trigger.QUEUE, "orders", {}),
        (Trigger.NATIVE, "*", {}),
        (Trigger.WEBSOCKET, "$default", {}),
    )
    assert list(_functions(app)) == ["queue_orders"]
