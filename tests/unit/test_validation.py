"""pydantic as an optional dependency: what validation does without it, or with a wrong version.

The installed case (a venv that really lacks pydantic) is covered by
tests/distribution/test_wheels.py; here the import is made to fail in this process.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import sys
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from polyserve import App, Context, Headers, HttpRequest, Message, MissingDependencyError, Trigger
from polyserve.validation import _PYDANTIC_EXTRA, _PYDANTIC_REQUIREMENT, _check_pydantic_version


@dataclasses.dataclass
class Order:
    sku: str
    quantity: int


def _ctx() -> Context:
    return Context("test", invocation_id="inv-1", function_name="fn")


@pytest.fixture
def without_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import pydantic` raise ImportError, as if it were absent.
    monkeypatch.setitem(sys.modules, "pydantic", None)


@pytest.mark.usefixtures("without_pydantic")
def test_a_payload_needing_validation_without_pydantic_names_the_extra() -> None:
    app = App("test")

    @app.queue("orders")
    def on_order(order: Order) -> Order:
        return order

    message = Message(id="m-1", body=b'{"sku": "A1", "quantity": 2}')
    with pytest.raises(MissingDependencyError) as caught:
        app.handle_event(Trigger.QUEUE, "orders", message, _ctx())
    assert isinstance(caught.value, ImportError)
    assert caught.value.code == "missing_dependency"
    assert caught.value.package == "pydantic"
    assert str(caught.value) == (
        "validating Order needs 'pydantic>=2.6,<3': pip install 'polyserve-core[pydantic]'"
    )


@pytest.mark.usefixtures("without_pydantic")
def test_an_http_body_needing_validation_without_pydantic_is_a_500_that_logs_the_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App("test")

    @app.post("/orders")
    def create(order: Order) -> Order:
        return order

    request = HttpRequest(
        "POST",
        "/orders",
        headers=Headers({"content-type": "application/json"}),
        body=b'{"sku": "A1", "quantity": 2}',
    )
    with caplog.at_level(logging.ERROR, logger="polyserve"):
        response = app.handle_http(request, _ctx())
    assert response.status == 500
    # The client sees a generic error; the log says what to install.
    assert b"pydantic" not in response.body
    assert "polyserve-core[pydantic]" in caplog.text


@pytest.mark.usefixtures("without_pydantic")
def test_handlers_that_need_no_validation_work_without_pydantic() -> None:
    app = App("test")

    @app.queue("orders")
    def on_order(message: Message) -> bytes:
        return message.body

    @app.queue("raw")
    def on_raw(payload: dict[str, Any]) -> dict[str, Any]:  # a plain dict: JSON parsing only
        return payload

    assert app.handle_event(Trigger.QUEUE, "orders", Message(id="1", body=b"x"), _ctx()) == b"x"
    result = app.handle_event(Trigger.QUEUE, "raw", Message(id="2", body=b'{"a": 1}'), _ctx())
    assert result == {"a": 1}


@pytest.mark.parametrize("version", ["1.10.13", "2.5.3", "3.0.0", "0.32", "unknown", "2"])
def test_an_unsupported_pydantic_version_names_the_extra_and_the_range(version: str) -> None:
    with pytest.raises(MissingDependencyError) as caught:
        _check_pydantic_version(version, feature="validating Order")
    assert str(caught.value) == (
        f"validating Order needs 'pydantic>=2.6,<3' (found pydantic {version}): "
        "pip install 'polyserve-core[pydantic]'"
    )


@pytest.mark.parametrize("version", ["2.6.0", "2.6.4", "2.11.7", "2.99.0"])
def test_supported_pydantic_versions_pass_the_gate(version: str) -> None:
    _check_pydantic_version(version)


def test_the_installed_pydantic_passes_the_gate() -> None:
    import pydantic

    _check_pydantic_version(pydantic.VERSION)


def test_the_gate_agrees_with_the_extra_the_core_declares() -> None:
    requirements = [Requirement(r) for r in importlib.metadata.requires("polyserve-core") or []]
    (declared,) = [r for r in requirements if r.name == "pydantic"]
    assert declared.marker is not None
    assert declared.marker.evaluate({"extra": "pydantic"})
    assert not declared.marker.evaluate({"extra": ""})
    assert declared.specifier == Requirement(_PYDANTIC_REQUIREMENT).specifier
    assert _PYDANTIC_EXTRA == "polyserve-core[pydantic]"
    for version in ("1.10.13", "2.5.3", "2.6.0", "2.11.7", "3.0.0", "3.1.0"):
        supported = version in SpecifierSet(str(declared.specifier))
        try:
            _check_pydantic_version(version)
        except MissingDependencyError:
            assert not supported, version
        else:
            assert supported, version
