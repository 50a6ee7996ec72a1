"""What a backend implements, and how a resource's logical name finds its backend and target.

The convention: a resource named ``orders`` of kind ``queue`` is sent to the
target in ``POLYSERVE_QUEUE_ORDERS`` (a queue URL, topic ARN, ``namespace/entity``,
``project/topic``, bucket name or binding name, as the backend reads it), unless
``configure(names=...)`` or the resource's own ``target=`` names it. The backend
is the one given to ``configure``, else the one ``POLYSERVE_OUTBOUND`` names
(``memory`` is built in; adapters register theirs with ``register``).

A message backend may also define ``message_size(kind, target, message) -> int``, the
bytes its service counts against ``max_bytes`` when that is more than the body
(attributes, an encoding); resources then check the limit with it.
"""

from __future__ import annotations

import os

from polyserve.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
    from typing import Protocol

    from polyserve.outbound.message import Message

    class MessageBackend(Protocol):
        """Sends messages to queues and topics."""

        #: The service's name, as errors show it (``"SQS"``).
        def service(self, kind: str, target: str) -> str: ...
        #: The largest message the service accepts, in bytes, as encoded.
        def max_bytes(self, kind: str, target: str) -> int: ...
        #: The most messages one call sends.
        def max_batch(self, kind: str, target: str) -> int: ...
        def send(
            self, kind: str, target: str, messages: Sequence[Message]
        ) -> list[str | Exception]:
            """Send up to ``max_batch`` messages; per message its id or the error it met."""
            ...

    class ObjectBackend(Protocol):
        """Stores objects in buckets."""

        def service(self, kind: str, target: str) -> str: ...
        def max_bytes(self, kind: str, target: str) -> int: ...
        def put(
            self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
        ) -> None: ...
        def get(self, target: str, key: str) -> bytes: ...
        def open(self, target: str, key: str, chunk_size: int) -> Iterator[bytes]: ...
        def delete(self, target: str, key: str) -> None: ...
        def list(self, target: str, prefix: str) -> Iterator[str]: ...
        def url(self, target: str, key: str, expires: int, method: str) -> str: ...

    class AsyncMessageBackend(MessageBackend, Protocol):
        """A backend whose service is reached asynchronously (Workers bindings).

        ``Queue.send_async`` and friends await ``send_async``; a backend without it
        has its ``send`` run in a worker thread.
        """

        async def send_async(
            self, kind: str, target: str, messages: Sequence[Message]
        ) -> list[str | Exception]: ...

    class AsyncObjectBackend(ObjectBackend, Protocol):
        """A bucket backend reached asynchronously; ``Bucket.*_async`` use these methods."""

        async def put_async(
            self, target: str, key: str, data: bytes, content_type: str, metadata: Mapping[str, str]
        ) -> None: ...
        async def get_async(self, target: str, key: str) -> bytes: ...
        def open_async(self, target: str, key: str, chunk_size: int) -> AsyncIterator[bytes]: ...
        async def delete_async(self, target: str, key: str) -> None: ...
        def list_async(self, target: str, prefix: str) -> AsyncIterator[str]: ...

    AsyncChunks = AsyncIterator[bytes]

__all__ = ["configure", "register", "resolve_backend", "resolve_target"]

_factories: dict[str, Callable[[], object]] = {}
# Backends the adapters provide, imported only when chosen.
_KNOWN = {
    "aws": ("polyserve_aws.outbound", "AwsBackend"),
    "azure": ("polyserve_azure.outbound", "AzureBackend"),
    "cloudflare": ("polyserve_cloudflare.outbound", "CloudflareBackend"),
    "gcp": ("polyserve_gcp.outbound", "GcpBackend"),
}
_configured: object | None = None
_names: dict[tuple[str, str], str] = {}
_from_env: dict[str, object] = {}


def register(name: str, factory: Callable[[], object]) -> None:
    """Make ``POLYSERVE_OUTBOUND=<name>`` select the backend ``factory`` builds (adapters call this)."""
    _factories[name] = factory


def configure(
    backend: object | None = None, *, names: Mapping[str, str] | None = None, kind: str = ""
) -> None:
    """Set the process's backend and, optionally, targets by logical name.

    ``names`` maps a logical name (or ``"queue:orders"`` to name one kind only) to
    its target. ``configure(None)`` goes back to ``POLYSERVE_OUTBOUND``.
    """
    global _configured
    _configured = backend
    if names is not None:
        _names.clear()
        for logical, target in names.items():
            found_kind, _, name = logical.rpartition(":")
            _names[(found_kind or kind, name)] = target


def env_name(kind: str, name: str) -> str:
    """The environment variable naming the target of resource ``name`` of ``kind``."""
    return (
        "POLYSERVE_" + kind.upper() + "_" + "".join(c if c.isalnum() else "_" for c in name).upper()
    )


def resolve_target(kind: str, name: str, explicit: str | None, required: bool) -> str:
    """The target of a logical name: explicit, configured, then from the environment."""
    if explicit:
        return explicit
    found = _names.get((kind, name)) or _names.get(("", name))
    if found:
        return found
    variable = env_name(kind, name)
    found = os.environ.get(variable)
    if found:
        return found
    if required:
        raise ConfigurationError(
            f"no target for {kind} {name!r}: set {variable} or map it with "
            "polyserve.outbound.configure(names=...)"
        )
    return name


def resolve_backend() -> object:
    """The backend in use: the configured one, else the one ``POLYSERVE_OUTBOUND`` names."""
    if _configured is not None:
        return _configured
    chosen = os.environ.get("POLYSERVE_OUTBOUND", "")
    if not chosen:
        raise ConfigurationError(
            "no outbound backend: set POLYSERVE_OUTBOUND (memory, or an adapter's backend "
            "such as aws) or call polyserve.outbound.configure(backend)"
        )
    backend = _from_env.get(chosen)
    if backend is None:
        if chosen == "memory" and chosen not in _factories:
            from polyserve.outbound.memory import MemoryBackend

            _factories["memory"] = MemoryBackend
        factory = _factories.get(chosen)
        if factory is None and chosen in _KNOWN:
            import importlib

            module, attribute = _KNOWN[chosen]
            try:
                factory = getattr(importlib.import_module(module), attribute)
            except ImportError:
                raise ConfigurationError(
                    f"POLYSERVE_OUTBOUND={chosen!r} needs {module.split('.')[0]} installed"
                ) from None
        if factory is None:
            known = ", ".join(sorted({"memory", *_KNOWN, *_factories}))
            raise ConfigurationError(
                f"POLYSERVE_OUTBOUND={chosen!r} names no backend (known: {known}); "
                "import the adapter that provides it"
            )
        backend = _from_env[chosen] = factory()
    return backend
