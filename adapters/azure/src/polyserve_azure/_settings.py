"""The settings of a generated ``FunctionApp``: ``function_app``'s arguments, checked, and the
registration options read on Azure (``connection``, ``sessions``, ``max_retries``, ...).

Everything here runs when the app is built, never per invocation; every mistake is a
``ConfigurationError`` naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from polyserve.errors import ConfigurationError
from polyserve.events import StorageAction
from polyserve_azure._identity import HEADER_SOURCES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polyserve.identity import HeaderTrust
    from polyserve.routing import Registration

__all__ = [
    "DEFAULT_CONNECTIONS",
    "Settings",
    "actions",
    "event_grid_actions",
    "flag",
    "has_blob_trigger",
    "retries",
    "setting_name",
]

DEFAULT_CONNECTIONS: Mapping[str, str] = {
    "storage": "AzureWebJobsStorage",
    "servicebus": "ServiceBusConnection",
    "eventhub": "EventHubConnection",
    "cosmosdb": "CosmosDBConnection",
    "kafka": "KafkaBrokerList",
}
"""The app setting each service's triggers read their connection from, by default."""


_AUTH_LEVELS = ("anonymous", "function", "admin")
# Event Hubs, Kafka and Cosmos DB checkpoint after every invocation, failed or not: only
# a retry policy redelivers a failed batch. Five tries, 4 s to 15 min apart.
_STREAM_RETRIES = 5


@dataclass(frozen=True)
class Settings:
    """``function_app``'s arguments, checked (``build``)."""

    connections: Mapping[str, str]
    auth_level: str
    timeout: float | None
    names: Mapping[str, str]
    route_prefix: str
    trust: Mapping[str, HeaderTrust]

    @classmethod
    def build(
        cls,
        connections: Mapping[str, str] | None,
        auth_level: str,
        timeout: float | None,
        names: Mapping[str, str] | None,
        route_prefix: str,
        identity_headers: Mapping[str, HeaderTrust] | None = None,
    ) -> Settings:
        merged = dict(DEFAULT_CONNECTIONS)
        for service, setting in (connections or {}).items():
            if service not in DEFAULT_CONNECTIONS:
                raise ConfigurationError(
                    f"unknown connection service {service!r}; use {sorted(DEFAULT_CONNECTIONS)}"
                )
            merged[service] = setting_name(setting, f"connections[{service!r}]")
        level = auth_level.lower() if isinstance(auth_level, str) else ""
        if level not in _AUTH_LEVELS:
            raise ConfigurationError(f"auth_level must be one of {_AUTH_LEVELS}: {auth_level!r}")
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"function_timeout must be positive or None: {timeout!r}")
        mapping = dict(names or {})
        for native, logical in mapping.items():
            if not isinstance(native, str) or not native or not isinstance(logical, str):
                raise ConfigurationError(f"names must map names to names: {native!r}: {logical!r}")
        if not isinstance(route_prefix, str):
            raise ConfigurationError(f"route_prefix must be a string: {route_prefix!r}")
        trust: Mapping[str, HeaderTrust] = {}
        if identity_headers:
            from polyserve.identity import header_trust

            trust = header_trust(identity_headers, HEADER_SOURCES)
        return cls(merged, level, timeout, mapping, route_prefix, trust)


def setting_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must name an app setting, got {value!r}")
    return value


def flag(reg: Registration, option: str, default: bool | None = None) -> bool | None:
    value = reg.options.get(option, default)
    if value is not None and not isinstance(value, bool):
        raise ConfigurationError(f"{reg.trigger.value} {reg.name!r}: {option} must be a boolean")
    return value


def retries(reg: Registration) -> int:
    value = reg.options.get("max_retries", _STREAM_RETRIES)
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ConfigurationError(
            f"stream {reg.name!r}: max_retries must be an integer >= -1 (-1: forever)"
        )
    return value


def actions(reg: Registration) -> frozenset[str]:
    return frozenset(str(a) for a in reg.options.get("actions", ("created", "deleted")))


def has_blob_trigger(reg: Registration) -> bool:
    return "created" in actions(reg) and reg.options.get("blob_trigger", True) is not False


def event_grid_actions(reg: Registration) -> bool:
    wanted = actions(reg) & {a.value for a in (StorageAction.CREATED, StorageAction.DELETED)}
    return bool(wanted - ({"created"} if has_blob_trigger(reg) else set()))
