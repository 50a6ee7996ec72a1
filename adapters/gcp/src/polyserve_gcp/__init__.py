"""polyserve on Google Cloud Functions (2nd gen and 1st gen), through functions-framework.

In ``main.py``::

    import polyserve_gcp
    from myapp import app

    handle_http = polyserve_gcp.http(app)              # --signature-type=http
    handle_event = polyserve_gcp.cloudevent(app)       # --signature-type=cloudevent
    handle_background = polyserve_gcp.background(app)  # --signature-type=event (1st gen)

Names are imported on first use, and no module imports flask, functions_framework
or cloudevents at import time.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyserve_gcp._cloudevent import cloudevent
    from polyserve_gcp._http import http
    from polyserve_gcp._legacy import background

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "background": "polyserve_gcp._legacy",
    "cloudevent": "polyserve_gcp._cloudevent",
    "http": "polyserve_gcp._http",
}

__all__ = ["background", "cloudevent", "http"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'polyserve_gcp' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*__all__, "__version__", "types"]
