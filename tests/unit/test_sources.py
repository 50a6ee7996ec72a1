"""Every event source of every adapter implements ``polyserve.adapter.Source`` alike.

A source is any module or class of an adapter that defines ``to_event``. Each must
have the three functions with the same positional signatures, ``matches(raw)``,
``to_event(raw, context, names)`` and ``to_native(outcome, raw, context)``, an
``is_http`` flag, and a ``to_event`` that returns what ``run`` accepts. Readers that
are not sources use other names (``read``, ``read_event``, ``from_request``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

ADAPTERS = ("polyserve_aws", "polyserve_azure", "polyserve_gcp", "polyserve_cloudflare")
# The entry points and helpers of an adapter that are not event sources.
_NOT_SOURCES = {"testing", "outbound", "idempotency", "types"}
_ARITY = {"matches": 1, "to_event": 3, "to_native": 3}
# What ``run`` dispatches on: one of these, or a union of them.
_REQUESTS = {"HttpRequest", "Event", "Batch"}


def _modules(package: str) -> list[ModuleType]:
    root = importlib.import_module(package)
    names = [m.name for m in pkgutil.iter_modules(root.__path__)]
    return [
        importlib.import_module(f"{package}.{name}")
        for name in sorted(names)
        if name.lstrip("_") not in _NOT_SOURCES
    ]


def _sources() -> list[tuple[str, Any, bool]]:
    """``(name, object, is_class)`` for every module and class that defines ``to_event``."""
    found: list[tuple[str, Any, bool]] = []
    for package in ADAPTERS:
        for module in _modules(package):
            if "to_event" in vars(module):
                found.append((module.__name__, module, False))
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and obj.__module__ == module.__name__
                    and "to_event" in vars(obj)
                ):
                    found.append((f"{module.__name__}.{name}", obj, True))
    return found


SOURCES = _sources()


def _positional(fn: Any, is_class: bool) -> list[inspect.Parameter]:
    params = list(inspect.signature(fn).parameters.values())
    if is_class:
        params = params[1:]  # self
    return params


def test_sources_are_found_in_every_adapter() -> None:
    packages = {name.split(".", 1)[0] for name, _, _ in SOURCES}
    assert packages == set(ADAPTERS)
    assert len(SOURCES) >= 25, [name for name, _, _ in SOURCES]


@pytest.mark.parametrize(("name", "source", "is_class"), SOURCES, ids=[s[0] for s in SOURCES])
def test_each_source_has_the_three_functions_with_the_same_signatures(
    name: str, source: Any, is_class: bool
) -> None:
    for function, arity in _ARITY.items():
        fn = getattr(source, function, None)
        assert callable(fn), f"{name} has no {function}"
        params = _positional(fn, is_class)
        assert len(params) == arity, f"{name}.{function}{inspect.signature(fn)}"
        assert all(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
            for p in params
        ), f"{name}.{function}{inspect.signature(fn)}"
    assert isinstance(getattr(source, "is_http", None), bool), f"{name} has no is_http flag"


@pytest.mark.parametrize(("name", "source", "is_class"), SOURCES, ids=[s[0] for s in SOURCES])
def test_to_event_returns_what_run_accepts(name: str, source: Any, is_class: bool) -> None:
    # Annotations are strings (``from __future__ import annotations``): compared by name.
    returned = inspect.signature(source.to_event).return_annotation
    assert isinstance(returned, str), f"{name}.to_event has no return annotation"
    kinds = {part.strip().rsplit(".", 1)[-1] for part in returned.split("|")}
    assert kinds <= _REQUESTS, f"{name}.to_event returns {returned}"
    # An HTTP request is answered as one; so is a WebSocket API's event, whose malformed
    # form gets a 400 reply rather than an error the platform would retry.
    http = "HttpRequest" in kinds or name.endswith("._websocket")
    assert source.is_http is http, f"{name}: is_http is {source.is_http}, to_event -> {returned}"
