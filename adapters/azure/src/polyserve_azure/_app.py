"""``function_app``: a real ``azure.functions.FunctionApp`` generated from a polyserve ``App``.

Every function is a small closure: it builds the ``Context``, converts the
native input with the trigger's module (``_http``, ``_queue``, ...) and calls the
app. Which function is generated for what::

    HTTP routes (any)           one httpTrigger "http", route "{*path}", every method
    Trigger.QUEUE               queueTrigger (Storage), or serviceBusTrigger with service="servicebus"
    Trigger.TOPIC               serviceBusTrigger on topic + subscription (option subscription=)
    Trigger.STREAM              eventHubTrigger (many), cosmosDBTrigger with service="cosmosdb",
                                or kafkaTrigger with service="kafka"
    Trigger.STORAGE             blobTrigger "<container>/{name}" for created blobs
    Trigger.SCHEDULE            timerTrigger, NCRONTAB from cron= or rate=
    Trigger.CLOUDEVENT (any)    one eventGridTrigger "eventgrid" for every type, which also
                                carries blob deletions to storage registrations

This module registers the functions; ``_settings`` checks the arguments and options,
``_invoke`` holds what every function does per call (its ``Context``, ...).
The closures carry real ``azure.functions`` annotations, set when they are built,
because the worker picks each parameter's converter from its annotation.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from polyserve.adapter import HTTP_METHODS, run
from polyserve.errors import (
    ConfigurationError,
    MissingDependencyError,
)
from polyserve.routing import Trigger
from polyserve_azure import (
    _cosmos,
    _invoke,
    _settings,
    _sources,
    _timer,
)
from polyserve_azure._identity import Identity

if TYPE_CHECKING:
    from collections.abc import Callable

    import azure.functions as func

    from polyserve.app import App
    from polyserve.context import Context
    from polyserve.identity import HeaderTrust
    from polyserve.routing import Registration
    from polyserve_azure._types import (
        InvocationContext,
        NativeBlob,
        NativeCloudEvent,
        NativeEventGridEvent,
        NativeEventHubEvent,
        NativeHttpRequest,
        NativeKafkaEvent,
        NativeQueueMessage,
        NativeServiceBusMessage,
        NativeTimer,
    )

__all__ = ["DEFAULT_CONNECTIONS", "function_app"]

DEFAULT_CONNECTIONS = _settings.DEFAULT_CONNECTIONS
"""The app setting each service's triggers read their connection from, by default."""

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_NAME = 127
# Azure's load balancer ends an HTTP request after 230 seconds, whatever
# functionTimeout allows, so an HTTP handler's deadline is never later than that.
_HTTP_LIMIT = 230.0


def function_app(
    app: App,
    *,
    connections: Mapping[str, str] | None = None,
    http_route: str = "{*path}",
    auth_level: str = "anonymous",
    function_timeout: float | None = 300.0,
    names: Mapping[str, str] | None = None,
    route_prefix: str = "api",
    identity_headers: Mapping[str, HeaderTrust] | None = None,
    http_streams: bool = False,
) -> func.FunctionApp:
    """An Azure Functions app (Python v2 programming model) that serves ``app``.

    Put it in ``function_app.py`` as a module-level variable; the worker indexes it.

    Args:
        app: the polyserve app.
        connections: app-setting names by service (``storage``, ``servicebus``,
            ``eventhub``, ``cosmosdb``), replacing ``DEFAULT_CONNECTIONS``; a
            registration's ``connection=`` option wins over both.
        http_route: the catch-all route template of the one HTTP function.
        auth_level: ``"anonymous"``, ``"function"`` or ``"admin"``.
        function_timeout: seconds an invocation may run (host.json's
            ``functionTimeout``), for ``Context.deadline``; ``None`` for no deadline.
            HTTP invocations get at most 230 seconds, Azure's limit for a request.
        names: native entity name -> logical registration name, for queues,
            topics, hubs, containers and blob containers named differently in Azure.
            Several entities may map to one name: each gets its own function.
        route_prefix: host.json's ``extensions.http.routePrefix``; it is removed from
            request paths before routing.
        identity_headers: ``{"app_service": True}`` reads ``Context.principal`` from
            App Service authentication's ``x-ms-client-principal*`` headers. Turn it
            on only with App Service authentication enabled, since without it any
            client can send those headers; a ``TokenVerifier`` instead of ``True``
            reads the caller from the Entra ID token in ``x-ms-token-aad-id-token``.
        http_streams: serve HTTP in the worker's HTTP streams mode, so that a streamed
            response (a handler's iterator, a mounted app's ``StreamingResponse``) is
            sent as it is produced. Imports ``azurefunctions-extensions-http-fastapi``
            (the ``http-streams`` extra), which turns the mode on for every HTTP
            function of the process; see ``docs/providers/azure.md``.

    Raises:
        MissingDependencyError: ``azure-functions`` is not installed, or
            ``http_streams`` without ``azurefunctions-extensions-http-fastapi``.
        ConfigurationError: an argument or a registration cannot be deployed on Azure
            (a topic without ``subscription``, a schedule without ``cron``/``rate``, ...).
    """
    try:
        import azure.functions as func
    except ImportError as exc:
        raise MissingDependencyError(
            "azure-functions", feature="polyserve_azure.function_app"
        ) from exc
    settings = _settings.Settings.build(
        connections, auth_level, function_timeout, names, route_prefix, identity_headers
    )
    if not isinstance(http_route, str) or not http_route or http_route.startswith("/"):
        raise ConfigurationError(f"http_route must be a route template without '/': {http_route!r}")
    return _Builder(app, func, settings).build(http_route, http_streams=http_streams)


class _Builder:
    """Adds one function per HTTP app, registration and native entity to a ``FunctionApp``."""

    def __init__(self, app: App, sdk: Any, settings: _settings.Settings) -> None:
        self.app = app
        self.func = sdk
        self.settings = settings
        self.native: func.FunctionApp = sdk.FunctionApp(
            http_auth_level=sdk.AuthLevel(settings.auth_level)
        )
        self._names: set[str] = set()

    def build(self, http_route: str, *, http_streams: bool = False) -> func.FunctionApp:
        if self.app.routes or self.app.mounts:
            if http_streams:
                self._http_streams(http_route)
            else:
                self._http(http_route)
        for reg in self.app.registrations:
            if reg.trigger is Trigger.QUEUE:
                self._queue(reg)
            elif reg.trigger is Trigger.TOPIC:
                self._topic(reg)
            elif reg.trigger is Trigger.STREAM:
                self._stream(reg)
            elif reg.trigger is Trigger.STORAGE:
                self._storage(reg)
            elif reg.trigger is Trigger.SCHEDULE:
                self._schedule(reg)
        if self._needs_event_grid():
            self._event_grid()
        return self.native

    # -- shared -----------------------------------------------------------------

    def _context(
        self, native: InvocationContext | None, name: str, limit: float | None = None
    ) -> Context:
        timeout = self.settings.timeout
        if limit is not None:
            timeout = limit if timeout is None else min(timeout, limit)
        return _invoke.context(native, name, timeout)

    def _name(self, *parts: str) -> str:
        # Azure function names: a letter first, then letters, digits, '_' and '-';
        # unique without regard to case.
        base = _INVALID_NAME_CHARS.sub("_", "_".join(parts)).strip("_-") or "function"
        if not base[0].isalpha():
            base = "f_" + base
        base = base[:_MAX_NAME]
        name, n = base, 1
        while name.lower() in self._names:
            n += 1
            suffix = f"_{n}"
            name = base[: _MAX_NAME - len(suffix)] + suffix
        self._names.add(name.lower())
        return name

    def _declare(
        self, handler: Callable[..., Any], name: str, param: str, native_type: Any
    ) -> Callable[..., Any]:
        handler.__name__ = handler.__qualname__ = name
        # The worker reads these with typing.get_type_hints to choose converters.
        handler.__annotations__ = {param: native_type, "context": self.func.Context}
        # On Python 3.10, get_type_hints makes the annotation of a parameter whose default
        # is None Optional[...], and the worker refuses a `context` that is not a class:
        # no function would load. The default stays, so the function can still be called
        # without a context, but is a stand-in that _context reads as None.
        assert handler.__defaults__ == (None,), "context is the one defaulted parameter"
        handler.__defaults__ = (_invoke.NO_CONTEXT,)
        return handler

    def _register(self, name: str, builder: Any, retries: int | None = None) -> None:
        if retries:
            builder = self.native.retry(
                strategy="exponential_backoff",
                max_retry_count=str(retries),
                minimum_interval="00:00:04",
                maximum_interval="00:15:00",
            )(builder)
        self.native.function_name(name=name)(builder)

    def _natives(self, reg: Registration) -> list[str]:
        if reg.name == "*":
            raise ConfigurationError(
                f"{reg.trigger.value} '*': an Azure trigger binds to one named entity"
            )
        found = [native for native, logical in self.settings.names.items() if logical == reg.name]
        return found or [reg.name]

    def _service(self, reg: Registration, allowed: tuple[str, ...]) -> str:
        service = reg.options.get("service", allowed[0])
        if service not in allowed:
            raise ConfigurationError(
                f"{reg.trigger.value} {reg.name!r}: service must be one of {allowed}, "
                f"got {service!r}"
            )
        return str(service)

    def _connection(self, reg: Registration, service: str) -> str:
        value = reg.options.get("connection", self.settings.connections[service])
        return _settings.setting_name(value, f"{reg.trigger.value} {reg.name!r} connection")

    # -- HTTP -------------------------------------------------------------------

    def _http(self, route: str) -> None:
        app, prefix = self.app, self.settings.route_prefix
        name = self._name("http")
        identify = Identity(self.settings.trust)

        source = _sources.HttpSource(prefix, identify)
        names = self.settings.names

        def handler(req: NativeHttpRequest, context: InvocationContext | None = None) -> Any:
            return run(app, source, req, self._context(context, name, _HTTP_LIMIT), names)

        self._http_route(handler, name, route, self.func.HttpRequest, self.func.HttpResponse)

    def _http_streams(self, route: str) -> None:
        from polyserve_azure import _streams

        extension = _streams.extension()
        app, prefix = self.app, self.settings.route_prefix
        name = self._name("http")
        identify = Identity(self.settings.trust)

        async def handler(req: Any, context: InvocationContext | None = None) -> Any:
            ctx = self._context(context, name, _HTTP_LIMIT)
            return await _streams.serve(app, req, ctx, route_prefix=prefix, identify=identify)

        # The worker accepts, in this mode, FastAPI's Request and Response types.
        self._http_route(handler, name, route, extension.Request, extension.Response)

    def _http_route(
        self, handler: Any, name: str, route: str, request_type: Any, response_type: Any
    ) -> None:
        # Declares ``handler`` as the HTTP function ``name`` for every method of ``route``.
        self._declare(handler, name, "req", request_type)
        handler.__annotations__["return"] = response_type
        builder = self.native.route(
            route=route,
            trigger_arg_name="req",
            methods=sorted(HTTP_METHODS),
            auth_level=self.settings.auth_level,
        )(handler)
        self._register(name, builder)

    # -- queues and topics --------------------------------------------------------

    def _queue(self, reg: Registration) -> None:
        service = self._service(reg, ("storage", "servicebus"))
        connection = self._connection(reg, service)
        for native in self._natives(reg):
            if service == "storage":
                name = self._name("queue", native)
                handler = self._storage_queue_handler(reg.name, name)
                builder = self.native.queue_trigger(
                    arg_name="msg",
                    queue_name=native,
                    connection=connection,
                    data_type=self.func.DataType.BINARY,
                )(self._declare(handler, name, "msg", self.func.QueueMessage))
            else:
                name = self._name("servicebus", native)
                handler = self._service_bus_handler(Trigger.QUEUE, reg.name, name)
                builder = self.native.service_bus_queue_trigger(
                    arg_name="msg",
                    connection=connection,
                    queue_name=native,
                    data_type=self.func.DataType.BINARY,
                    is_sessions_enabled=_settings.flag(reg, "sessions"),
                )(self._declare(handler, name, "msg", self.func.ServiceBusMessage))
            self._register(name, builder)

    def _topic(self, reg: Registration) -> None:
        self._service(reg, ("servicebus",))
        subscription = reg.options.get("subscription")
        if not isinstance(subscription, str) or not subscription:
            raise ConfigurationError(
                f"topic {reg.name!r} needs subscription='<name>' for its Service Bus subscription"
            )
        connection = self._connection(reg, "servicebus")
        for native in self._natives(reg):
            name = self._name("topic", native, subscription)
            handler = self._service_bus_handler(Trigger.TOPIC, reg.name, name)
            builder = self.native.service_bus_topic_trigger(
                arg_name="msg",
                connection=connection,
                topic_name=native,
                subscription_name=subscription,
                data_type=self.func.DataType.BINARY,
                is_sessions_enabled=_settings.flag(reg, "sessions"),
            )(self._declare(handler, name, "msg", self.func.ServiceBusMessage))
            self._register(name, builder)

    def _storage_queue_handler(self, logical: str, name: str) -> Callable[..., Any]:
        app = self.app

        source = _sources.QueueSource(Trigger.QUEUE, logical)
        names = self.settings.names

        def handler(msg: NativeQueueMessage, context: InvocationContext | None = None) -> None:
            run(app, source, msg, self._context(context, name), names)

        return handler

    def _service_bus_handler(self, trigger: Trigger, logical: str, name: str) -> Callable[..., Any]:
        app, names = self.app, self.settings.names
        source = _sources.ServiceBusSource(trigger, logical)

        def handler(msg: NativeServiceBusMessage, context: InvocationContext | None = None) -> None:
            run(app, source, msg, self._context(context, name), names)

        return handler

    # -- streams ------------------------------------------------------------------

    def _stream(self, reg: Registration) -> None:
        if reg.options.get("window"):
            # Tumbling windows are Lambda's (Kinesis, DynamoDB Streams): no Azure trigger
            # delivers a StreamWindow, so the handler would never get what it declares.
            raise ConfigurationError(f"stream {reg.name!r}: window=True has no Azure trigger")
        service = self._service(reg, ("eventhub", "cosmosdb", "kafka"))
        connection = self._connection(reg, service)
        retries = _settings.retries(reg)
        for native in self._natives(reg):
            if service == "kafka":
                name, builder = self._kafka(reg, native, connection)
            elif service == "eventhub":
                name = self._name("eventhub", native)
                handler = self._event_hub_handler(reg.name, name)
                builder = self.native.event_hub_message_trigger(
                    arg_name="events",
                    connection=connection,
                    event_hub_name=native,
                    cardinality="many",
                    data_type=self.func.DataType.BINARY,
                    consumer_group=reg.options.get("consumer_group"),
                )(self._declare(handler, name, "events", self._event_list))
            else:
                database = reg.options.get("database")
                if not isinstance(database, str) or not database:
                    raise ConfigurationError(
                        f"stream {reg.name!r} (cosmosdb) needs database='<name>'"
                    )
                paths = _cosmos.partition_paths(reg.options.get("partition_key"), reg.name)
                name = self._name("cosmos", native)
                handler = self._cosmos_handler(reg.name, name, paths)
                builder = self.native.cosmos_db_trigger(
                    arg_name="documents",
                    connection=connection,
                    database_name=database,
                    container_name=native,
                    lease_container_name=_settings.setting_name(
                        reg.options.get("lease_container", "leases"),
                        f"stream {reg.name!r} lease_container",
                    ),
                    create_lease_container_if_not_exists=_settings.flag(
                        reg, "create_lease_container", True
                    ),
                )(self._declare(handler, name, "documents", self.func.DocumentList))
            self._register(name, builder, retries)

    def _kafka(self, reg: Registration, topic: str, connection: str) -> tuple[str, Any]:
        name = self._name("kafka", topic)
        batch = _settings.flag(reg, "batch", True)
        options = reg.options.get("kafka_options", {})
        if not isinstance(options, Mapping):
            raise ConfigurationError(f"stream {reg.name!r}: kafka_options must be a mapping")
        handler = self._kafka_handler(reg.name, name, bool(_settings.flag(reg, "ordered", False)))
        native_type = self._list_of(self.func.KafkaEvent) if batch else self.func.KafkaEvent
        builder = self.native.kafka_trigger(
            arg_name="events",
            topic=topic,
            broker_list=f"%{connection}%",
            consumer_group=reg.options.get("consumer_group", "$Default"),
            cardinality="many" if batch else "one",
            data_type=self.func.DataType.BINARY,
            **options,
        )(self._declare(handler, name, "events", native_type))
        return name, builder

    def _kafka_handler(self, logical: str, name: str, ordered: bool) -> Callable[..., Any]:
        app, names = self.app, self.settings.names
        source = _sources.KafkaSource(Trigger.STREAM, logical, ordered)

        def handler(
            events: list[NativeKafkaEvent] | NativeKafkaEvent,
            context: InvocationContext | None = None,
        ) -> None:
            run(app, source, events, self._context(context, name), names)

        return handler

    def _list_of(self, native_type: Any) -> Any:
        # typing.List, not list[...]: the worker's typing_inspect recognises only
        # typing's generic aliases as iterable annotations.
        generic: Any = typing.List  # noqa: UP006
        return generic[native_type]

    @property
    def _event_list(self) -> Any:
        return self._list_of(self.func.EventHubEvent)

    def _event_hub_handler(self, logical: str, name: str) -> Callable[..., Any]:
        app, names = self.app, self.settings.names
        source = _sources.EventHubSource(Trigger.STREAM, logical)

        def handler(
            events: list[NativeEventHubEvent], context: InvocationContext | None = None
        ) -> None:
            run(app, source, events, self._context(context, name), names)

        return handler

    def _cosmos_handler(
        self, logical: str, name: str, paths: tuple[str, ...]
    ) -> Callable[..., Any]:
        app, names = self.app, self.settings.names
        source = _sources.CosmosSource(Trigger.STREAM, logical, paths)

        def handler(documents: list[object], context: InvocationContext | None = None) -> None:
            run(app, source, documents, self._context(context, name), names)

        return handler

    # -- storage ------------------------------------------------------------------

    def _storage(self, reg: Registration) -> None:
        if not _settings.has_blob_trigger(reg):
            return  # every event of this registration comes through Event Grid
        connection = self._connection(reg, "storage")
        for native in self._natives(reg):
            name = self._name("blob", native)
            handler = self._blob_handler(reg.name, native, name)
            builder = self.native.blob_trigger(
                arg_name="blob", path=f"{native}/{{name}}", connection=connection
            )(self._declare(handler, name, "blob", self.func.InputStream))
            self._register(name, builder)

    def _blob_handler(self, logical: str, container: str, name: str) -> Callable[..., Any]:
        app, names = self.app, self.settings.names
        source = _sources.BlobSource(Trigger.STORAGE, logical, container)

        def handler(blob: NativeBlob, context: InvocationContext | None = None) -> None:
            run(app, source, blob, self._context(context, name), names)

        return handler

    # -- schedules ----------------------------------------------------------------

    def _schedule(self, reg: Registration) -> None:
        if reg.name == "*":
            raise ConfigurationError("schedule '*': every schedule needs its own name")
        schedule = _timer.ncrontab(reg.name, reg.options.get("cron"), reg.options.get("rate"))
        name = self._name("schedule", reg.name)
        app, names = self.app, self.settings.names
        source = _sources.TimerSource(Trigger.SCHEDULE, reg.name)

        def handler(timer: NativeTimer, context: InvocationContext | None = None) -> None:
            run(app, source, timer, self._context(context, name), names)

        builder = self.native.timer_trigger(arg_name="timer", schedule=schedule)(
            self._declare(handler, name, "timer", self.func.TimerRequest)
        )
        self._register(name, builder)

    # -- Event Grid ---------------------------------------------------------------

    def _needs_event_grid(self) -> bool:
        for reg in self.app.registrations:
            if reg.trigger is Trigger.CLOUDEVENT:
                return True
            if reg.trigger is Trigger.STORAGE and _settings.event_grid_actions(reg):
                return True
        return False

    def _event_grid(self) -> None:
        name = self._name("eventgrid")
        app, names = self.app, self.settings.names

        source = _sources.EventGridSource(app)

        def handler(
            event: NativeEventGridEvent | NativeCloudEvent,
            context: InvocationContext | None = None,
        ) -> None:
            run(app, source, event, self._context(context, name), names)

        builder = self.native.event_grid_trigger(arg_name="event")(
            self._declare(handler, name, "event", self.func.EventGridEvent)
        )
        self._register(name, builder)
