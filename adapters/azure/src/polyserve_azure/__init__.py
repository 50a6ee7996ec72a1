"""polyserve on Azure Functions: ``function_app(app)`` builds the ``FunctionApp`` to deploy.

``function_app.py``::

    from myproject.app import app as portable_app
    import polyserve_azure

    app = polyserve_azure.function_app(portable_app)

Names are imported on first use, and ``azure.functions`` only when
``function_app`` runs, so importing this package costs almost nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyserve_azure._app import DEFAULT_CONNECTIONS, function_app
    from polyserve_azure._batch import BatchFailedError

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "DEFAULT_CONNECTIONS": "polyserve_azure._app",
    "BatchFailedError": "polyserve_azure._batch",
    "function_app": "polyserve_azure._app",
}

__all__ = ["DEFAULT_CONNECTIONS", "BatchFailedError", "function_app"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'polyserve_azure' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
