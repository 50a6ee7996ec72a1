"""Outbound on Google Cloud: queues and topics on Pub/Sub, buckets on Cloud Storage.

Select it with ``POLYSERVE_OUTBOUND=gcp`` or ``polyserve.outbound.configure(GcpBackend())``.
Targets: a Pub/Sub topic as ``project/topic``, ``projects/P/topics/T`` or a bare topic
id in the project of ``GOOGLE_CLOUD_PROJECT``; a bucket name (``gs://`` optional). A queue
is a topic too: on Google Cloud a queue is a topic with one subscription.

The SDKs (``google-cloud-pubsub``, ``google-cloud-storage``: ``polyserve-gcp[outbound]``)
are imported by the first send or object call, and each client is made once. Both honour
``PUBSUB_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST``.

Sending calls Pub/Sub's ``Publish`` directly, one request per batch, because that call
answers with the ids of the messages it took, or fails as a whole: ``Topic.send_batch``
then knows exactly which messages were not sent, and retries only those that met a
transient error (with the client library's own retries turned off, so there is one retry
policy). A request holds messages of one ordering key only, as Pub/Sub requires.

A ``CloudEvent`` is published in the binary content mode of the CloudEvents Pub/Sub
protocol binding: its attributes as ``ce-`` message attributes (``content-type`` for
``datacontenttype``), its data as the message data. ``polyserve_gcp`` reads it back for a
handler that takes a ``CloudEvent``.

Limits (Pub/Sub and Cloud Storage quotas and limits pages): a message's data up to
10 MB (10,000,000 bytes); a publish request up to 10 MB and 1,000 messages; up to 100
attributes per message, a key up to 256 bytes, not starting with ``goog``, a value up to
1,024 bytes; an ordering key up to 1,024 bytes. An object up to 5 TiB.
"""

from __future__ import annotations

from polyserve.errors import ConfigurationError, MissingDependencyError
from polyserve.outbound.errors import ObjectNotFoundError, PublishError, TransientPublishError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from typing import Any

    from polyserve.events.cloudevent import CloudEvent
    from polyserve.outbound.message import Message

__all__ = ["GcpBackend"]

MAX_DATA_BYTES = 10_000_000
MAX_REQUEST_BYTES = 10_000_000
MAX_REQUEST_MESSAGES = 1000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_ORDERING_KEY_BYTES = 1024
MAX_OBJECT_BYTES = 5 * 1024**4
# What a message costs in a request beyond its data and attributes (field tags, lengths),
# generously counted so that a request never crosses the limit.
_MESSAGE_OVERHEAD = 64
# An attribute's map-entry tags and lengths beside its key and value bytes.
_ATTRIBUTE_OVERHEAD = 8
_TIMEOUT = 30.0

# google.api_core exception names that mean "try again": the codes Pub/Sub's own
# publisher retries, and HTTP 429/5xx from Cloud Storage.
_TRANSIENT = frozenset(
    (
        "Aborted", "BadGateway", "Cancelled", "DeadlineExceeded", "GatewayTimeout",
        "InternalServerError", "ResourceExhausted", "RetryError", "ServiceUnavailable",
        "TooManyRequests", "Unknown",
    )
)  # fmt: skip
_REFUSED = frozenset(("Forbidden", "PermissionDenied", "Unauthenticated", "Unauthorized"))


def _sdk(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        package = "google-cloud-pubsub" if "pubsub" in name else "google-cloud-storage"
        raise MissingDependencyError(
            package, feature="Google Cloud outbound", extra="polyserve-gcp[outbound]"
        ) from exc


def _translate(exc: Exception, what: str) -> Exception:
    """The polyserve error for an exception the Google libraries raised about ``what``."""
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith("google.auth"):
        if name == "TransportError":  # the token endpoint or metadata server did not answer
            return TransientPublishError(f"{name} while getting credentials for {what}")
        return ConfigurationError(
            f"no Google Cloud credentials for {what}: set GOOGLE_APPLICATION_CREDENTIALS "
            "or run where Application Default Credentials are available"
        )
    if name == "NotFound":
        return ConfigurationError(f"{what} does not exist (check the name and the project)")
    if name in _REFUSED:
        return ConfigurationError(f"{what}: {name} (check the credentials and their roles)")
    if name in _TRANSIENT or module.startswith(("requests", "urllib3")):
        return TransientPublishError(f"{name} for {what}")
    message = getattr(exc, "message", None) or str(exc)
    return PublishError(f"{name} for {what}: {' '.join(str(message).split())}")


def _checked(data: bytes, key: str | None, attributes: Mapping[str, str]) -> str | int:
    """What a message of ``data``, ordering ``key`` and ``attributes`` costs in a publish
    request, in bytes, or why Pub/Sub would refuse it (checked before sending). Keys,
    values and the ordering key are counted in UTF-8 bytes, as Pub/Sub counts them."""
    if len(attributes) > MAX_ATTRIBUTES:
        return f"{len(attributes)} attributes, over Pub/Sub's limit of {MAX_ATTRIBUTES}"
    size = len(data) + _MESSAGE_OVERHEAD
    for key, value in attributes.items():
        key_size = len(key.encode())
        if not key or key_size > MAX_ATTRIBUTE_KEY_BYTES:
            return (
                f"attribute key of {key_size} bytes: Pub/Sub takes 1 to {MAX_ATTRIBUTE_KEY_BYTES}"
            )
        if key.startswith("goog"):
            return f"attribute key {key!r}: keys starting with 'goog' are reserved by Pub/Sub"
        value_size = len(value.encode())
        if value_size > MAX_ATTRIBUTE_VALUE_BYTES:
            return (
                f"attribute {key!r} of {value_size} bytes, over Pub/Sub's limit of "
                f"{MAX_ATTRIBUTE_VALUE_BYTES}"
            )
        size += key_size + value_size + _ATTRIBUTE_OVERHEAD
    if key:
        key_size = len(key.encode())
        if key_size > MAX_ORDERING_KEY_BYTES:
            return f"ordering key over Pub/Sub's limit of {MAX_ORDERING_KEY_BYTES} bytes"
        size += key_size
    return size


class GcpBackend:
    """Queues and topics on Pub/Sub, buckets on Cloud Storage.

    ``project`` is used for bare topic ids (default: ``GOOGLE_CLOUD_PROJECT``);
    ``pubsub_options`` go to the Pub/Sub ``PublisherClient`` and ``storage_options`` to
    ``google.cloud.storage.Client`` (``credentials``, ``client_options``, ``project``);
    ``signing_credentials`` sign ``Bucket.url`` URLs (default: the storage client's).
    """

    needs_target = True

    def __init__(
        self,
        *,
        project: str | None = None,
        pubsub_options: Mapping[str, Any] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        signing_credentials: Any = None,
        timeout: float = _TIMEOUT,
    ) -> None:
        self.project = project
        self.pubsub_options = dict(pubsub_options or {})
        self.storage_options = dict(storage_options or {})
        self.signing_credentials = signing_credentials
        self.timeout = timeout
        self._publisher: Any = None
        self._storage: Any = None
        self._message_type: Any = None
        self._request_type: Any = None
        self._topics: dict[str, str] = {}

    # -- clients -------------------------------------------------------------------

    def _made(self, make: Callable[[], Any], what: str) -> Any:
        try:
            return make()
        except (ImportError, ConfigurationError):
            raise
        except Exception as exc:  # credentials missing or unusable, a bad option
            raise _translate(exc, what) from None

    def publisher(self) -> Any:
        """The Pub/Sub ``PublisherClient`` (the generated one, without its batching), made once."""
        if self._publisher is None:
            pubsub = _sdk("google.pubsub_v1")
            # The raw protobuf classes: building proto-plus wrappers message by message
            # costs more than the rest of a send together.
            self._message_type = pubsub.PubsubMessage.pb()
            self._request_type = pubsub.PublishRequest
            options = self.pubsub_options
            self._publisher = self._made(lambda: pubsub.PublisherClient(**options), "Pub/Sub")
        return self._publisher

    def storage(self) -> Any:
        """The Cloud Storage ``Client``, made once."""
        if self._storage is None:
            storage = _sdk("google.cloud.storage")
            options = self.storage_options
            self._storage = self._made(lambda: storage.Client(**options), "Cloud Storage")
        return self._storage

    # -- names ---------------------------------------------------------------------

    def topic_path(self, target: str) -> str:
        """``projects/P/topics/T`` for a target written ``P/T``, ``projects/P/topics/T`` or ``T``."""
        found = self._topics.get(target)
        if found is not None:
            return found
        parts = target.split("/")
        if len(parts) == 4 and parts[0] == "projects" and parts[2] == "topics":
            found = target
        elif len(parts) == 2 and all(parts):
            found = f"projects/{parts[0]}/topics/{parts[1]}"
        elif len(parts) == 1 and target:
            from polyserve_gcp._tracing import project_id

            project = self.project or project_id()
            if project is None:
                raise ConfigurationError(
                    f"Pub/Sub topic {target!r} names no project: write it as project/topic "
                    "or set GOOGLE_CLOUD_PROJECT"
                )
            found = f"projects/{project}/topics/{target}"
        else:
            raise ConfigurationError(
                f"{target!r} is not a Pub/Sub topic: write project/topic or projects/P/topics/T"
            )
        self._topics[target] = found
        return found

    @staticmethod
    def _bucket_name(target: str) -> str:
        return target.removeprefix("gs://").rstrip("/")

    # -- MessageBackend ------------------------------------------------------------

    def service(self, kind: str, target: str) -> str:
        return "Cloud Storage" if kind == "bucket" else "Pub/Sub"

    def max_bytes(self, kind: str, target: str) -> int:
        return MAX_OBJECT_BYTES if kind == "bucket" else MAX_DATA_BYTES

    def max_batch(self, kind: str, target: str) -> int:
        return MAX_REQUEST_MESSAGES

    def send(self, kind: str, target: str, messages: Sequence[Message]) -> list[str | Exception]:
        """Publish ``messages``: one request per ordering key and per 10 MB.

        A message Pub/Sub would refuse (see ``_checked``) fails alone, before sending.

        Raises:
            ConfigurationError: the topic does not exist, or the credentials cannot publish.
        """
        topic = self.topic_path(target)
        publisher = self.publisher()
        make = self._message_type
        request_type = self._request_type
        out: list[str | Exception] = [PublishError("not sent")] * len(messages)
        # Requests in the order their first message comes, each holding one ordering key.
        requests: dict[str, list[list[tuple[int, Any]]]] = {}
        sizes: dict[str, int] = {}
        budget = MAX_REQUEST_BYTES - len(topic.encode()) - _MESSAGE_OVERHEAD
        for index, message in enumerate(messages):
            attributes = message.headers()
            data = message.body
            if message.cloudevent is not None:
                data = self._binary_mode(message.cloudevent, attributes)
            size = _checked(data, message.key, attributes)
            if isinstance(size, str):
                out[index] = PublishError(size, code="message_refused")
                continue
            key = message.key or ""
            batches = requests.setdefault(key, [[]])
            if batches[-1] and sizes[key] + size > budget:
                batches.append([])
                sizes[key] = 0
            sizes[key] = sizes.get(key, 0) + size
            native = make(data=data, attributes=attributes, ordering_key=key)
            batches[-1].append((index, native))
        for key, batches in requests.items():
            failed: Exception | None = None
            for batch in batches:
                if failed is not None:  # a key's later messages wait for its earlier ones
                    for index, _ in batch:
                        out[index] = failed
                    continue
                request = request_type.wrap(
                    request_type.pb()(topic=topic, messages=[native for _, native in batch])
                )
                try:
                    answer = publisher.publish(request=request, retry=None, timeout=self.timeout)
                except Exception as exc:
                    error = _translate(exc, f"Pub/Sub topic {topic!r}")
                    if isinstance(error, ConfigurationError):
                        raise error from None
                    for index, _ in batch:
                        out[index] = error
                    failed = error if key else None
                    continue
                for (index, _), message_id in zip(batch, answer.message_ids, strict=True):
                    out[index] = message_id
        return out

    @staticmethod
    def _binary_mode(event: CloudEvent, attributes: dict[str, str]) -> bytes:
        """The data of ``event`` in the Pub/Sub binding's binary mode; its attributes
        (``ce-`` names, ``content-type`` for ``datacontenttype``) go into ``attributes``
        in place of the structured form's content type."""
        from polyserve.outbound.cloudevents import to_binary

        headers, data = to_binary(event)
        del attributes["content-type"]
        attributes.update(headers)
        return data

    def message_size(self, kind: str, target: str, message: Message) -> int:
        """The data Pub/Sub counts against its 10 MB: a CloudEvent's data in binary mode."""
        if message.cloudevent is None:
            return len(message.body)
        return len(self._binary_mode(message.cloudevent, {"content-type": ""}))

    # -- ObjectBackend -------------------------------------------------------------

    def _blob(self, target: str, key: str) -> Any:
        return self.storage().bucket(self._bucket_name(target)).blob(key)

    def _object_call(self, target: str, key: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            if type(exc).__name__ == "NotFound":
                raise ObjectNotFoundError(
                    f"no object {key!r} in bucket {self._bucket_name(target)!r}"
                ) from None
            raise _translate(exc, f"Cloud Storage bucket {self._bucket_name(target)!r}") from None

    def put(
        self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        blob = self._blob(target, key)
        if metadata:
            blob.metadata = dict(metadata)
        try:
            blob.upload_from_string(data, content_type=content_type, timeout=self.timeout)
        except Exception as exc:  # a missing bucket is a 404 here, not a missing object
            raise _translate(exc, f"Cloud Storage bucket {self._bucket_name(target)!r}") from None

    def get(self, target: str, key: str) -> bytes:
        blob = self._blob(target, key)
        data: bytes = self._object_call(
            target, key, lambda: blob.download_as_bytes(timeout=self.timeout)
        )
        return data

    def open(self, target: str, key: str, chunk_size: int) -> Iterator[bytes]:
        """The object in ranged reads of ``chunk_size`` bytes; a missing object raises now."""
        blob = self._blob(target, key)
        reader = self._object_call(target, key, lambda: blob.open("rb", chunk_size=chunk_size))
        first: bytes = self._object_call(target, key, lambda: reader.read(chunk_size))
        return self._chunks(target, key, reader, first, chunk_size)

    def _chunks(
        self, target: str, key: str, reader: Any, first: bytes, chunk_size: int
    ) -> Iterator[bytes]:
        try:
            chunk = first
            while chunk:
                yield chunk
                chunk = self._object_call(target, key, lambda: reader.read(chunk_size))
        finally:
            reader.close()

    def delete(self, target: str, key: str) -> None:
        import contextlib

        blob = self._blob(target, key)
        # Removing an object that is not there is not an error.
        with contextlib.suppress(ObjectNotFoundError):
            self._object_call(target, key, lambda: blob.delete(timeout=self.timeout))

    def list(self, target: str, prefix: str) -> Iterator[str]:
        bucket = self._bucket_name(target)
        what = f"Cloud Storage bucket {bucket!r}"
        try:
            pages = self.storage().list_blobs(bucket, prefix=prefix or None, timeout=self.timeout)
            for blob in pages:
                yield blob.name
        except (ConfigurationError, MissingDependencyError):
            raise
        except Exception as exc:
            raise _translate(exc, what) from None

    def url(self, target: str, key: str, expires: int, method: str) -> str:
        """A V4 signed URL, signed with the credentials' key, else through IAM ``signBlob``.

        Raises:
            ConfigurationError: the credentials can sign neither way (user credentials
                without a service account, anonymous ones).
        """
        import datetime as dt

        client = self.storage()
        blob = self._blob(target, key)
        options: dict[str, Any] = {
            "version": "v4",
            "expiration": dt.timedelta(seconds=expires),
            "method": method,
            "api_access_endpoint": client.api_endpoint,
        }
        # The client keeps its credentials in a private attribute; it signs with them too.
        credentials = self.signing_credentials or client._credentials
        options["credentials"] = credentials
        if not hasattr(credentials, "sign_bytes"):
            # Metadata-server credentials (Cloud Functions, Cloud Run) hold no key: the
            # signature comes from IAM signBlob, for the account they belong to.
            email = getattr(credentials, "service_account_email", None)
            if not email:
                raise ConfigurationError(
                    "signed URLs need service-account credentials (a key file, or the "
                    "function's service account with the Service Account Token Creator role)"
                )
            try:
                if not credentials.valid:
                    credentials.refresh(_sdk("google.auth.transport.requests").Request())
            except Exception as exc:
                raise _translate(exc, "signing a Cloud Storage URL") from None
            options["service_account_email"] = email
            options["access_token"] = credentials.token
        try:
            found: str = blob.generate_signed_url(**options)
        except Exception as exc:
            raise _translate(exc, "signing a Cloud Storage URL") from None
        return found
