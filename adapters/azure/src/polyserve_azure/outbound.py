"""Outbound on Azure: Storage Queue, Service Bus queues and topics, Event Grid and Blob Storage.

Select it with ``POLYSERVE_OUTBOUND=azure`` or ``polyserve.outbound.configure(AzureBackend())``.
A resource's target (``POLYSERVE_QUEUE_<NAME>`` and so on, else its logical name):

============================== ===================================================
queue ``orders``               Storage Queue ``orders`` (``storage:orders`` too)
queue ``https://<account>.queue.core.windows.net/orders``  that Storage Queue
queue ``servicebus:jobs``      Service Bus queue ``jobs``
queue ``sb://<ns>.servicebus.windows.net/jobs``  that Service Bus queue
topic ``events``               Service Bus topic ``events`` (``servicebus:`` / ``sb://`` too)
topic ``cloudevents:<endpoint>``  Event Grid topic, CloudEvents 1.0 schema
topic ``eventgrid:<endpoint>`` Event Grid topic, Event Grid schema (a bare https:// endpoint too)
bucket ``thumbnails``          Blob container ``thumbnails`` (or ``https://<account>.blob.core.windows.net/<container>``)
============================== ===================================================

Credentials come from the same app settings the triggers read: Storage from
``AzureWebJobsStorage`` (a connection string, or ``AzureWebJobsStorage__accountName`` /
``__queueServiceUri`` / ``__blobServiceUri`` with an identity), Service Bus from
``ServiceBusConnection`` (or ``ServiceBusConnection__fullyQualifiedNamespace``), an Event
Grid topic's key from ``POLYSERVE_EVENTGRID_KEY``. Where there is no secret, the
``credential`` given, else azure-identity's ``DefaultAzureCredential`` (a managed
identity), is used. Connection strings and keys are never logged nor put in errors.

The SDKs (azure-storage-queue, azure-storage-blob, azure-servicebus) are imported by
the first call that needs each; Event Grid is plain HTTP. Limits, from Microsoft's
documentation: a Storage Queue message up to 64 KiB as stored, which with the base64
encoding the Functions trigger expects is 48 KiB (49,152 bytes) of body; a Service Bus
message and batch up to 256 KB on Standard, 100 MB on Premium (``servicebus_tier``);
an Event Grid event and the array of one request up to 1 MB; a block blob up to
50,000 blocks of 4,000 MiB.
"""

from __future__ import annotations

import os

from polyserve.errors import ConfigurationError
from polyserve.outbound.errors import (
    MessageTooLargeError,
    ObjectNotFoundError,
    PublishError,
    TransientPublishError,
)
from polyserve_azure import _eventgrid_out, _servicebus_out

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from polyserve.outbound.message import Message

__all__ = ["AzureBackend"]

KIB = 1024
#: A stored Storage Queue message is at most 64 KiB; base64 leaves 48 KiB of body.
QUEUE_LIMIT = 64 * KIB * 3 // 4
#: A block blob: 50,000 blocks of up to 4,000 MiB (the SDK uploads in blocks).
BLOB_LIMIT = 50_000 * 4000 * KIB * KIB
STORAGE_QUEUE, SERVICE_BUS, EVENT_GRID, BLOB = "Storage Queue", "Service Bus", "Event Grid", "Blob"
_TRANSIENT_STATUS = frozenset((408, 429, 500, 502, 503, 504))
_DEFAULT_CONNECTIONS = {"storage": "AzureWebJobsStorage", "servicebus": "ServiceBusConnection"}
_KEY_SETTING = "POLYSERVE_EVENTGRID_KEY"


class _Target:
    """A parsed target: the service, where it is (an account or namespace URL, or ``""``
    for the default connection), and the entity (queue, topic, container or endpoint)."""

    __slots__ = ("cloudevents", "entity", "service", "where")

    def __init__(self, service: str, where: str, entity: str, cloudevents: bool = False) -> None:
        self.service = service
        self.where = where
        self.entity = entity
        self.cloudevents = cloudevents


def _split_url(url: str) -> tuple[str, str]:
    """An entity's URL as the account's URL (keeping a SAS query) and the entity's name."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    base, _, last = parts.path.rstrip("/").rpartition("/")
    if not parts.netloc or not last:
        raise ConfigurationError(f"{url!r} does not end in an entity name")
    account = f"{parts.scheme}://{parts.netloc}{base}" + (f"?{parts.query}" if parts.query else "")
    return account, unquote(last)


def _parse(kind: str, target: str) -> _Target:
    if kind == "bucket":
        if "://" in target:
            return _Target(BLOB, *_split_url(target))
        return _Target(BLOB, "", target)
    for prefix in ("servicebus:", "sb://"):
        if target.startswith(prefix):
            rest = target[len(prefix) :]
            namespace, _, entity = rest.rpartition("/")
            if not entity or (prefix == "sb://" and not namespace):
                raise ConfigurationError(
                    f"{target!r} names no Service Bus entity (servicebus:<name> or "
                    "sb://<namespace>/<name>)"
                )
            return _Target(SERVICE_BUS, namespace, entity)
    if kind == "queue":
        if "://" in target:
            return _Target(STORAGE_QUEUE, *_split_url(target))
        return _Target(STORAGE_QUEUE, "", target.removeprefix("storage:"))
    if target.startswith("cloudevents:"):
        return _Target(EVENT_GRID, "", target[len("cloudevents:") :], cloudevents=True)
    if target.startswith("eventgrid:"):
        return _Target(EVENT_GRID, "", target[len("eventgrid:") :])
    if target.startswith(("https://", "http://")):
        return _Target(EVENT_GRID, "", target)
    return _Target(SERVICE_BUS, "", target)


def _storage_error(exc: BaseException, what: str) -> Exception:
    """The typed error for what azure-core raised while calling a storage service."""
    from azure.core import exceptions as core

    code = getattr(exc, "error_code", None) or ""
    code = str(getattr(code, "value", code))
    status = getattr(exc, "status_code", None)
    if isinstance(exc, core.ResourceNotFoundError):
        return ConfigurationError(f"{what} does not exist ({code or 'not found'})")
    if isinstance(exc, core.ClientAuthenticationError) or status == 403:
        return ConfigurationError(
            f"{what}: access refused ({code or status}); check the credentials"
        )
    if isinstance(exc, (core.ServiceRequestError, core.ServiceResponseError)):
        return TransientPublishError(f"{what}: {type(exc).__name__}")
    if status in _TRANSIENT_STATUS:
        return TransientPublishError(f"{what}: {code or status}")
    if code == "ConditionNotMet":
        return PublishError(f"{what}: the object changed while it was read ({code})")
    return PublishError(f"{what}: {code or status or type(exc).__name__}")


class AzureBackend:
    """Queues, topics and buckets on Azure.

    Args:
        settings: where app settings are read (the environment by default).
        connections: the app setting of each service's connection, as ``function_app``'s
            ``connections`` (``{"storage": ..., "servicebus": ...}``).
        credential: an azure-core credential for targets named by URL and identity-based
            connections (a token credential, or a key credential for Storage).
        servicebus_tier: ``"standard"`` (256 KB messages) or ``"premium"`` (100 MB).
        eventgrid_key: an Event Grid topic key (else ``POLYSERVE_EVENTGRID_KEY``).
        envelope: send each Storage Queue message in an envelope that carries its
            attributes, content type and trace (``polyserve_azure._envelope``), which the
            polyserve queue trigger unwraps; ``False`` sends the body alone, for other
            consumers.
        client_options: passed to every Storage and Service Bus client (``retry_total``,
            ``connection_timeout``, ...).
    """

    needs_target = False

    def __init__(
        self,
        *,
        settings: Mapping[str, str] | None = None,
        connections: Mapping[str, str] | None = None,
        credential: Any = None,
        servicebus_tier: str = "standard",
        eventgrid_key: str | None = None,
        envelope: bool = True,
        **client_options: Any,
    ) -> None:
        if servicebus_tier not in _servicebus_out.LIMITS:
            raise ConfigurationError(
                f"servicebus_tier is one of {sorted(_servicebus_out.LIMITS)}, got {servicebus_tier!r}"
            )
        self.settings: Mapping[str, str] = os.environ if settings is None else settings
        self.connections = {**_DEFAULT_CONNECTIONS, **(connections or {})}
        self.credential = credential
        self.servicebus_tier = servicebus_tier
        self.eventgrid_key = eventgrid_key
        self.envelope = envelope
        self.client_options = client_options
        self._targets: dict[tuple[str, str], _Target] = {}
        self._clients: dict[tuple[str, ...], Any] = {}
        self._token: tuple[str, float] | None = None

    def __repr__(self) -> str:  # settings and credentials stay out of logs
        return f"AzureBackend(servicebus_tier={self.servicebus_tier!r})"

    # Targets and clients

    def _target(self, kind: str, target: str) -> _Target:
        found = self._targets.get((kind, target))
        if found is None:
            found = self._targets[(kind, target)] = _parse(kind, target)
        return found

    def _identity(self, what: str, settings: str) -> Any:
        if self.credential is not None:
            return self.credential
        import importlib

        try:
            identity: Any = importlib.import_module("azure.identity")
        except ImportError:
            raise ConfigurationError(
                f"no credential for {what}: set {settings}, pass AzureBackend(credential=...) "
                "or install azure-identity to use a managed identity"
            ) from None
        self.credential = identity.DefaultAzureCredential()
        return self.credential

    def _storage(self, service: str) -> tuple[str, Any]:
        """How to reach the default account's ``service`` (``queue`` or ``blob``): a
        connection string, or its URL and a credential."""
        setting = self.connections["storage"]
        value = self.settings.get(setting)
        if value:
            return value, None
        url = self.settings.get(f"{setting}__{service}ServiceUri")
        account = self.settings.get(f"{setting}__accountName")
        if not url and account:
            url = f"https://{account}.{service}.core.windows.net"
        if not url:
            raise ConfigurationError(
                f"no Storage connection: set the app setting {setting} (a connection string) "
                f"or {setting}__accountName (with an identity)"
            )
        return url, self._identity(f"Storage account {url}", setting)

    def _storage_client(self, cls: Any, service: str, where: str, *args: Any, **kwargs: Any) -> Any:
        options = {**self.client_options, **kwargs}
        if where:
            if "sig=" in where:  # a SAS in the URL is the credential
                return cls(where, *args, **options)
            account = where.split("?", 1)[0]
            return cls(where, *args, credential=self._identity(account, "a credential"), **options)
        value, credential = self._storage(service)
        if credential is not None:
            return cls(value, *args, credential=credential, **options)
        try:
            return cls.from_connection_string(value, *args, **options)
        except ValueError:
            raise ConfigurationError(
                f"the app setting {self.connections['storage']} is not a valid Storage "
                "connection string"
            ) from None

    def _queue_client(self, where: str, name: str) -> Any:
        key = ("queue", where, name)
        found = self._clients.get(key)
        if found is None:
            from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

            found = self._clients[key] = self._storage_client(
                QueueClient, "queue", where, name, message_encode_policy=BinaryBase64EncodePolicy()
            )
        return found

    def _blob_service(self, where: str) -> Any:
        key = ("blob", where)
        found = self._clients.get(key)
        if found is None:
            from azure.storage.blob import BlobServiceClient

            found = self._clients[key] = self._storage_client(BlobServiceClient, "blob", where)
        return found

    def _sender(self, namespace: str, kind: str, entity: str) -> Any:
        key = ("servicebus", namespace, kind, entity)
        found = self._clients.get(key)
        if found is None:
            client = self._servicebus_client(namespace)
            make = client.get_queue_sender if kind == "queue" else client.get_topic_sender
            found = self._clients[key] = make(entity)
        return found

    def _servicebus_client(self, namespace: str) -> Any:
        key = ("servicebus", namespace)
        found = self._clients.get(key)
        if found is not None:
            return found
        from azure.servicebus import ServiceBusClient

        setting = self.connections["servicebus"]
        if not namespace:
            value = self.settings.get(setting)
            if value:
                try:
                    found = ServiceBusClient.from_connection_string(value, **self.client_options)
                except ValueError:
                    raise ConfigurationError(
                        f"the app setting {setting} is not a valid Service Bus connection string"
                    ) from None
                self._clients[key] = found
                return found
            namespace = self.settings.get(f"{setting}__fullyQualifiedNamespace", "")
            if not namespace:
                raise ConfigurationError(
                    f"no Service Bus connection: set the app setting {setting} (a connection "
                    f"string) or {setting}__fullyQualifiedNamespace (with an identity)"
                )
        credential = self._identity(f"Service Bus namespace {namespace}", setting)
        found = ServiceBusClient(namespace, credential, **self.client_options)
        self._clients[key] = found
        return found

    def close(self) -> None:
        """Close every client and sender made so far."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    # MessageBackend

    def service(self, kind: str, target: str) -> str:
        return self._target(kind, target).service

    def max_bytes(self, kind: str, target: str) -> int:
        service = self._target(kind, target).service
        if service == STORAGE_QUEUE:
            return QUEUE_LIMIT
        if service == SERVICE_BUS:
            return _servicebus_out.LIMITS[self.servicebus_tier]
        if service == EVENT_GRID:
            return _eventgrid_out.EVENT_LIMIT
        return BLOB_LIMIT

    def max_batch(self, kind: str, target: str) -> int:
        return 32 if self._target(kind, target).service == STORAGE_QUEUE else 100

    def send(self, kind: str, target: str, messages: Sequence[Message]) -> list[str | Exception]:
        found = self._target(kind, target)
        if found.service == STORAGE_QUEUE:
            return self._storage_queue(found, messages)
        if found.service == SERVICE_BUS:
            return self._servicebus(found, kind, messages)
        return self._eventgrid(found, messages)

    def _storage_queue(self, target: _Target, messages: Sequence[Message]) -> list[str | Exception]:
        """One ``Put Message`` per message (the service has no batch call), bodies base64."""
        from azure.core.exceptions import AzureError

        from polyserve_azure._envelope import wrap

        client = self._queue_client(target.where, target.entity)
        out: list[str | Exception] = []
        for message in messages:
            data = message.body
            if self.envelope:
                data = wrap(data, message.headers())
                if len(data) > QUEUE_LIMIT:
                    out.append(
                        MessageTooLargeError(target.entity, len(data), QUEUE_LIMIT, STORAGE_QUEUE)
                    )
                    continue
            try:
                sent = client.send_message(data, visibility_timeout=message.delay or None)
            except AzureError as exc:
                error = _storage_error(exc, f"queue {target.entity!r}")
                if isinstance(error, ConfigurationError):
                    raise error from None
                out.append(error)
            else:
                out.append(str(sent.id))
        return out

    def _servicebus(
        self, target: _Target, kind: str, messages: Sequence[Message]
    ) -> list[str | Exception]:
        sender = self._sender(target.where, kind, target.entity)
        limit = _servicebus_out.LIMITS[self.servicebus_tier]

        def new_batch() -> Any:
            try:
                return sender.create_message_batch()
            except Exception as exc:  # opening the link: mapped to a typed error
                raise _servicebus_out.error(exc, target.entity) from None

        return _servicebus_out.pack(messages, new_batch, sender.send_messages, target.entity, limit)

    def _eventgrid_headers(self, endpoint: str, cloudevents: bool) -> dict[str, str]:
        media = _eventgrid_out.CLOUDEVENTS_BATCH if cloudevents else _eventgrid_out.EVENT_GRID_JSON
        headers = {"content-type": media}
        key = self.eventgrid_key or self.settings.get(_KEY_SETTING)
        if key:
            headers["aeg-sas-key"] = key
            return headers
        import time

        token = self._token
        if token is None or token[1] - 60 < time.time():
            credential = self._identity(f"Event Grid topic {endpoint}", _KEY_SETTING)
            got = credential.get_token(_eventgrid_out.SCOPE)
            token = self._token = (got.token, float(got.expires_on))
        headers["authorization"] = "Bearer " + token[0]
        return headers

    def _eventgrid(self, target: _Target, messages: Sequence[Message]) -> list[str | Exception]:
        endpoint = target.entity
        url = _eventgrid_out.endpoint_url(endpoint)
        prepared = _eventgrid_out.events(messages, target.cloudevents, endpoint)
        out: list[str | Exception] = [p if isinstance(p, Exception) else p[0] for p in prepared]
        ready = [(i, p) for i, p in enumerate(prepared) if not isinstance(p, Exception)]
        if not ready:
            return out
        headers = self._eventgrid_headers(endpoint, target.cloudevents)
        for group in _eventgrid_out.arrays([event for _, (_, event) in ready]):
            body = b"[" + b",".join(ready[g][1][1] for g in group) + b"]"
            try:
                _eventgrid_out.post(url, headers, body, endpoint)
            except PublishError as exc:
                for g in group:
                    out[ready[g][0]] = exc
        return out

    # ObjectBackend

    def _container(self, target: str) -> tuple[Any, str]:
        found = self._target("bucket", target)
        return self._blob_service(found.where).get_container_client(found.entity), found.entity

    def _blob_call(self, name: str, key: str | None, method: Any, *args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return method(*args, **kwargs)
        except ResourceNotFoundError as exc:
            if key is not None and getattr(exc, "error_code", None) in ("BlobNotFound", None):
                raise ObjectNotFoundError(f"no object {key!r} in container {name!r}") from None
            raise _storage_error(exc, f"container {name!r}") from None
        except AzureError as exc:
            raise _storage_error(exc, f"container {name!r}") from None

    def put(
        self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        from azure.storage.blob import ContentSettings

        container, name = self._container(target)
        self._blob_call(
            name,
            None,
            container.upload_blob,
            key,
            data,
            overwrite=True,
            content_settings=ContentSettings(content_type=content_type),
            metadata=dict(metadata),
        )

    def get(self, target: str, key: str) -> bytes:
        container, name = self._container(target)
        downloader = self._blob_call(name, key, container.download_blob, key)
        data: bytes = self._blob_call(name, key, downloader.readall)
        return data

    def open(self, target: str, key: str, chunk_size: int) -> Iterator[bytes]:
        """The blob in ranges of ``chunk_size`` bytes, each fetched when it is needed; every
        range is read from the version first seen (a blob replaced meanwhile fails the read)."""
        from azure.core import MatchConditions

        container, name = self._container(target)
        blob = container.get_blob_client(key)
        props = self._blob_call(name, key, blob.get_blob_properties)
        size, etag = int(props.size), props.etag

        def chunks() -> Iterator[bytes]:
            for offset in range(0, size, chunk_size):
                part = self._blob_call(
                    name,
                    key,
                    blob.download_blob,
                    offset=offset,
                    length=min(chunk_size, size - offset),
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
                yield self._blob_call(name, key, part.readall)

        return chunks()

    def delete(self, target: str, key: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        container, name = self._container(target)
        try:
            container.delete_blob(key, delete_snapshots="include")
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) not in ("BlobNotFound", None):
                raise _storage_error(exc, f"container {name!r}") from None
        except AzureError as exc:
            raise _storage_error(exc, f"container {name!r}") from None

    def list(self, target: str, prefix: str) -> Iterator[str]:
        container, name = self._container(target)
        pages = self._blob_call(name, None, container.list_blobs, name_starts_with=prefix or None)
        iterator = iter(pages)
        while True:
            item = self._blob_call(name, None, next, iterator, None)
            if item is None:
                return
            yield item.name

    def url(self, target: str, key: str, expires: int, method: str) -> str:
        """A SAS URL: signed with the account key when the connection has one, else with a
        user delegation key (an identity with a data role on the account)."""
        import datetime as dt

        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        permissions = {
            "GET": BlobSasPermissions(read=True),
            "PUT": BlobSasPermissions(create=True, write=True),
            "DELETE": BlobSasPermissions(delete=True),
        }
        permission = permissions.get(method.upper())
        if permission is None:
            raise PublishError(f"a Blob SAS URL grants {sorted(permissions)}, not {method!r}")
        found = self._target("bucket", target)
        service = self._blob_service(found.where)
        blob = service.get_blob_client(found.entity, key)
        now = dt.datetime.now(dt.timezone.utc)
        expiry = now + dt.timedelta(seconds=expires)
        account_key = getattr(service.credential, "account_key", None)
        if account_key:
            signature = {"account_key": account_key}
        else:
            delegation = self._blob_call(
                found.entity, None, service.get_user_delegation_key, now, expiry
            )
            signature = {"user_delegation_key": delegation}
        sas = generate_blob_sas(
            blob.account_name,
            found.entity,
            key,
            permission=permission,
            expiry=expiry,
            start=now - dt.timedelta(minutes=5),
            **signature,
        )
        return f"{blob.url}?{sas}"
