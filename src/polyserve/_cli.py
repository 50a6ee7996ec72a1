"""``polyserve serve module:app``: serve an app locally over HTTP."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

from polyserve.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Sequence


def _load(target: str) -> object:
    module_name, sep, attr = target.partition(":")
    if not sep:
        raise ConfigurationError(f"expected 'module:attribute', got {target!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polyserve`` command."""
    parser = argparse.ArgumentParser(prog="polyserve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve an App on localhost")
    serve.add_argument("app", help="the app to serve, as 'module:attribute'")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.add_argument("--app-dir", default=".", help="folder to import the app from")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.app_dir)
    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError(
            "uvicorn", feature="polyserve serve", extra="polyserve-core[serve]"
        ) from None
    target = args.app if args.reload else _load(args.app)
    uvicorn.run(
        target,  # type: ignore[arg-type]  # uvicorn's stubs do not know ASGI callables by protocol
        host=args.host,
        port=args.port,
        reload=args.reload,
        reload_dirs=[args.app_dir] if args.reload else None,
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
