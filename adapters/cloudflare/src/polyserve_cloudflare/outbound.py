"""Outbound on Workers: Queues producer bindings for queues and topics, R2 bindings for buckets.

Inside the Workers runtime the entry point makes it the default
(``POLYSERVE_OUTBOUND=cloudflare`` unless set); elsewhere select it with that
variable or ``polyserve.outbound.configure(CloudflareBackend())``. Bindings are asynchronous
JavaScript objects, so a Worker's handlers use the async methods::

    await orders.send_async({"id": 7})            # Queue.send_async / Topic.publish_async
    await thumbs.put_async("t/7.jpg", data, content_type="image/jpeg")
    async for chunk in thumbs.open_async("big.bin"): ...

The blocking ones (``send``, ``put`` ...) raise ``ConfigurationError`` saying so.
Bindings come from the ``env`` given, else the current invocation's (the entry
point records it), else the runtime's ``workers.env``. The binding for resource
``orders`` of kind ``queue`` is the one named by ``POLYSERVE_QUEUE_ORDERS`` (the
environment, ``configure(names=...)``, ``target=``, or a Worker variable of that
name), else ``ORDERS`` (the name upper-cased, other characters as ``_``), else
``orders``.

Queues: a body travels with Queues' own content type (``bytes`` for bytes,
``text`` for text, ``json`` for JSON payloads that JavaScript reads back unchanged;
others, such as integers beyond 2**53, as ``text``), so JavaScript consumers read
it as usual and polyserve's consumer gets the bytes that were sent. Queues has no message attributes: a message with attributes or a trace
is sent as a JSON envelope ``{"polyserve_message": 1, "attributes": {...},
"text" | "base64": ...}`` (the attributes with ``content-type`` and ``traceparent``
added, as SQS carries them), which this adapter's consumer unwraps.
``delay`` becomes ``delaySeconds``; Queues has no ordering keys or deduplication,
so ``key`` and ``dedup_id`` are not sent, and it returns no message id to the
producer (ids are empty strings). A topic is a queue here.

Limits (Cloudflare's documentation): a message up to 128 KB (128,000 bytes,
about 100 of them taken by Queues' own metadata), ``sendBatch`` up to 100
messages and 256 KB in total (larger batches are split), ``delaySeconds`` up to
24 hours; one R2 ``put`` up to 5 GiB less 5 MiB. R2 bindings cannot presign
URLs: ``Bucket.url`` raises ``ConfigurationError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyserve.errors import ConfigurationError, PolyserveError
from polyserve.outbound.backend import env_name
from polyserve.outbound.errors import (
    MessageTooLargeError,
    ObjectNotFoundError,
    PublishError,
    TransientPublishError,
)
from polyserve_cloudflare._worker import worker_env

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

    from polyserve.outbound.message import Message
    from polyserve_cloudflare.types import JsRuntime

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "MAX_DELAY",
    "MAX_MESSAGE_BYTES",
    "MAX_OBJECT_BYTES",
    "CloudflareBackend",
]

MAX_MESSAGE_BYTES = 128_000
"""The largest Queues message, in bytes (Queues counts 1 KB as 1,000 bytes)."""
MAX_BATCH = 100
"""The most messages one ``sendBatch`` call takes."""
MAX_BATCH_BYTES = 256_000
"""The most bytes one ``sendBatch`` call takes, all messages together."""
MAX_DELAY = 86_400
"""The longest ``delaySeconds`` (24 hours)."""
MAX_OBJECT_BYTES = 5 * 1024**3 - 5 * 1024**2
"""The largest single R2 upload: 5 GiB less 5 MiB."""

ENVELOPE = "polyserve_message"
"""The first key of the JSON envelope that carries attributes and a trace."""

_TRANSIENT_MARKS = ("Too Many Requests", "429", "10058", "Internal Error", "temporarily")


def _error(exc: Exception, what: str) -> PublishError:
    # JavaScript errors reach Python as pyodide.ffi.JsException; the binding's message
    # is all there is to tell throttling (retried) from a refusal.
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if any(mark in text for mark in _TRANSIENT_MARKS):
        return TransientPublishError(f"{what}: {text}")
    return PublishError(f"{what}: {text}")


class CloudflareBackend:
    """Queues and R2 through a Worker's bindings.

    ``env``: the Worker's ``env`` to take bindings from; by default the current
    invocation's. ``runtime``: how JavaScript values are made (Pyodide's by
    default; ``polyserve_cloudflare.testing.FakeRuntime()`` under CPython).
    """

    needs_target = False

    def __init__(self, env: Any = None, *, runtime: JsRuntime | None = None) -> None:
        self.env = env
        self._runtime = runtime

    def __repr__(self) -> str:
        return "CloudflareBackend()"

    @property
    def runtime(self) -> JsRuntime:
        """The ``JsRuntime`` given, or Pyodide's (created on first use)."""
        if self._runtime is None:
            from polyserve_cloudflare._js import PyodideRuntime

            self._runtime = PyodideRuntime()
        return self._runtime

    def binding(self, kind: str, target: str) -> Any:
        """The JavaScript binding for ``target`` (see the module docstring for the names tried).

        Raises:
            ConfigurationError: the Worker's ``env`` has no such binding.
        """
        env = worker_env(self.env)
        names = []
        variable = _attribute(env, env_name(kind, target))
        if isinstance(variable, str) and variable:
            names.append(variable)
        names.append("".join(c if c.isalnum() else "_" for c in target).upper())
        names.append(target)
        method = "put" if kind == "bucket" else "sendBatch"
        for name in dict.fromkeys(names):
            found = _attribute(env, name)
            if found is not None and not isinstance(found, str):
                found = self.runtime.unwrap(found)
                if _attribute(found, method) is None:
                    what = "an R2 bucket" if kind == "bucket" else "a queue producer"
                    raise ConfigurationError(f"the Worker binding {name!r} is not {what}")
                return found
        tried = ", ".join(dict.fromkeys(names))
        binding_kind = "r2_buckets" if kind == "bucket" else "queues.producers"
        raise ConfigurationError(
            f"no Worker binding for {kind} {target!r} (tried {tried}): add one under "
            f"{binding_kind} in the Wrangler file, or set {env_name(kind, target)} to its name"
        )

    # MessageBackend

    def service(self, kind: str, target: str) -> str:
        return "R2" if kind == "bucket" else "Cloudflare Queues"

    def max_bytes(self, kind: str, target: str) -> int:
        return MAX_OBJECT_BYTES if kind == "bucket" else MAX_MESSAGE_BYTES

    def max_batch(self, kind: str, target: str) -> int:
        return MAX_BATCH

    def send(self, kind: str, target: str, messages: Sequence[Message]) -> list[str | Exception]:
        raise _blocking(f"{kind}.{'publish' if kind == 'topic' else 'send'}")

    async def send_async(
        self, kind: str, target: str, messages: Sequence[Message]
    ) -> list[str | Exception]:
        """Send with ``sendBatch``, split so that no call exceeds 100 messages or 256 KB.

        Each message's outcome is ``""`` (Queues gives the producer no id) or its error;
        a failed call fails each of its messages.
        """
        queue = self.binding(kind, target)
        outcomes: list[str | Exception] = [""] * len(messages)
        pending: list[tuple[int, Any]] = []
        pending_bytes = 0
        for index, message in enumerate(messages):
            try:
                entry, size = self._entry(message, target)
            except PublishError as exc:
                outcomes[index] = exc
                continue
            if pending and pending_bytes + size > MAX_BATCH_BYTES:
                await self._send_batch(queue, pending, outcomes, target)
                pending, pending_bytes = [], 0
            pending.append((index, entry))
            pending_bytes += size
        if pending:
            await self._send_batch(queue, pending, outcomes, target)
        return outcomes

    async def _send_batch(
        self,
        queue: Any,
        pending: list[tuple[int, Any]],
        outcomes: list[str | Exception],
        target: str,
    ) -> None:
        runtime = self.runtime
        try:
            await queue.sendBatch(runtime.to_js([entry for _, entry in pending]))
        except PolyserveError:
            raise
        except Exception as exc:
            error = _error(exc, f"sending to queue {target!r}")
            for index, _ in pending:
                outcomes[index] = error

    def _entry(self, message: Message, target: str) -> tuple[dict[str, Any], int]:
        # One sendBatch entry (body, contentType, delaySeconds) and its size as Queues counts it.
        delay = message.delay
        if not 0 <= delay <= MAX_DELAY:
            raise PublishError(
                f"a delay of {delay} seconds is outside Cloudflare Queues' 0..{MAX_DELAY}"
            )
        trace = message.trace
        body = message.body
        if message.attributes or (trace is not None and trace.traceparent is not None):
            # Queues has no attributes: they travel, with the content type and the
            # trace headers, as Message.headers() gives them, around the body.
            envelope: dict[str, Any] = {ENVELOPE: 1, "attributes": message.headers()}
            text = _text(body)
            if text is None:
                import base64

                envelope["base64"] = base64.b64encode(body).decode()
            else:
                envelope["text"] = text
            import json

            encoded = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
            entry: dict[str, Any] = {
                "body": self.runtime.json_parse(encoded),
                "contentType": "json",
            }
            size = len(encoded.encode())
        else:
            entry, size = self._plain(message), len(body)
        if size > MAX_MESSAGE_BYTES:
            raise MessageTooLargeError(target, size, MAX_MESSAGE_BYTES, "Cloudflare Queues")
        if delay:
            entry["delaySeconds"] = delay
        return entry, size

    def _plain(self, message: Message) -> dict[str, Any]:
        media = message.content_type.split(";", 1)[0].strip().lower()
        body = message.body
        text = None if media == "application/octet-stream" else _text(body)
        if text is None:
            return {"body": self.runtime.to_js(body), "contentType": "bytes"}
        if media == "application/json" or media.endswith("+json"):
            runtime = self.runtime
            try:
                value = runtime.json_parse(text)
                # Sent as a JSON value only when JavaScript writes it back to the same text:
                # an integer beyond 2**53 or a float such as 1.0 would come back changed,
                # so such a body travels as its text.
                if runtime.json_stringify(value) == text:
                    return {"body": value, "contentType": "json"}
            except Exception:
                pass  # not JSON after all: sent as the text it is
        return {"body": text, "contentType": "text"}

    # ObjectBackend

    def put(
        self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        raise _blocking("bucket.put")

    def get(self, target: str, key: str) -> bytes:
        raise _blocking("bucket.get")

    def open(self, target: str, key: str, chunk_size: int) -> Iterator[bytes]:
        raise _blocking("bucket.open")

    def delete(self, target: str, key: str) -> None:
        raise _blocking("bucket.delete")

    def list(self, target: str, prefix: str) -> Iterator[str]:
        raise _blocking("bucket.list")

    def url(self, target: str, key: str, expires: int, method: str) -> str:
        raise ConfigurationError(
            "an R2 binding cannot presign URLs: presigning needs R2's S3-compatible API and "
            "an access key, which the binding does not use; serve the object from the "
            "Worker instead, or presign with an S3 client outside Workers"
        )

    async def put_async(
        self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        bucket = self.binding("bucket", target)
        runtime = self.runtime
        options = runtime.to_js(
            {"httpMetadata": {"contentType": content_type}, "customMetadata": dict(metadata)}
        )
        try:
            await bucket.put(key, runtime.to_js(data), options)
        except Exception as exc:
            raise _error(exc, f"putting {key!r} in R2 bucket {target!r}") from None

    async def _object(self, target: str, key: str) -> Any:
        bucket = self.binding("bucket", target)
        try:
            found = await bucket.get(key)
        except Exception as exc:
            raise _error(exc, f"getting {key!r} from R2 bucket {target!r}") from None
        if self.runtime.is_null(found):
            raise ObjectNotFoundError(f"no object {key!r} in bucket {target!r}")
        return found

    async def get_async(self, target: str, key: str) -> bytes:
        found = await self._object(target, key)
        try:
            buffer = await found.arrayBuffer()
        except Exception as exc:
            raise _error(exc, f"reading {key!r} from R2 bucket {target!r}") from None
        return bytes(buffer.to_bytes())

    async def open_async(self, target: str, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The object's body stream, read as it is consumed, in chunks of ``chunk_size``."""
        found = await self._object(target, key)
        reader = found.body.getReader()
        pending = bytearray()
        try:
            while True:
                try:
                    step = await reader.read()
                except Exception as exc:
                    raise _error(exc, f"reading {key!r} from R2 bucket {target!r}") from None
                if step.done:
                    break
                pending += step.value.to_bytes()
                while len(pending) >= chunk_size:
                    yield bytes(pending[:chunk_size])
                    del pending[:chunk_size]
            if pending:
                yield bytes(pending)
        finally:
            reader.releaseLock()

    async def delete_async(self, target: str, key: str) -> None:
        bucket = self.binding("bucket", target)
        try:
            await bucket.delete(key)
        except Exception as exc:
            raise _error(exc, f"deleting {key!r} from R2 bucket {target!r}") from None

    async def list_async(self, target: str, prefix: str) -> AsyncIterator[str]:
        """The keys under ``prefix``, page by page (R2 returns them in order)."""
        bucket = self.binding("bucket", target)
        runtime = self.runtime
        cursor: str | None = None
        while True:
            options: dict[str, Any] = {"prefix": prefix}
            if cursor:
                options["cursor"] = cursor
            try:
                page = await bucket.list(runtime.to_js(options))
            except Exception as exc:
                raise _error(exc, f"listing R2 bucket {target!r}") from None
            for item in page.objects:
                yield str(item.key)
            if not page.truncated:
                return
            cursor = str(page.cursor)


def _attribute(obj: Any, name: str) -> Any:
    try:
        value = getattr(obj, name, None)
    except Exception:
        return None
    if value is None and hasattr(obj, "get") and isinstance(obj, dict):
        value = obj.get(name)
    return value


def _text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _blocking(call: str) -> ConfigurationError:
    return ConfigurationError(
        f"Cloudflare bindings are asynchronous: {call}() cannot wait for them; "
        f"await the async variant ({call}_async) from an async handler"
    )
