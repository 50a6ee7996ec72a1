"""``polyserve serve module:app``: serve an app locally over HTTP.

Exit status: 0 after the server stops, 2 when the command line or the app it names
is wrong (or uvicorn is not installed), each reported in one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from polyserve import __version__
from polyserve.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

__all__ = ["main"]

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _is_missing(module_name: str, exc: ModuleNotFoundError) -> bool:
    # The target itself (or a package on its way) is missing, as opposed to a module
    # that the target imports: that is an error inside the user's code.
    return exc.name is not None and (
        module_name == exc.name or module_name.startswith(exc.name + ".")
    )


def _failed(module_name: str, exc: BaseException) -> ConfigurationError:
    # One line, whatever the exception's message spans (a pydantic error spans several).
    message = " ".join(str(exc).split())
    return ConfigurationError(f"importing {module_name!r} failed: {type(exc).__name__}: {message}")


def _import(module_name: str, app_dir: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if not _is_missing(module_name, exc):
            raise _failed(module_name, exc) from exc
        hint = ""
        if "/" in module_name or "\\" in module_name or module_name.endswith(".py"):
            hint = "; give a dotted module name (petstore.app), not a file path"
        raise ConfigurationError(
            f"no module named {module_name!r} (looked in --app-dir {app_dir!r} "
            f"and the Python path){hint}"
        ) from None
    except Exception as exc:
        # Whatever the module raised at import (a syntax error, a missing setting) is
        # the user's to fix: name it in one line, with the traceback on request.
        raise _failed(module_name, exc) from exc


def _is_asgi_callable(value: object) -> bool:
    if inspect.isclass(value) or not callable(value):
        return False
    try:
        inspect.signature(value).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (a builtin): let the server judge
        return True
    return True


def _load(target: str, app_dir: str = ".") -> object:
    """The object ``target`` (``module:attribute``) names, checked to be servable.

    Raises ``ConfigurationError`` when there is no colon, the module cannot be found or
    fails to import (the module's own exception is its ``__cause__``), the attribute
    is missing, or it is neither an ``App`` nor an ASGI application.
    """
    from polyserve.app import App

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"expected 'module:attribute' (petstore.app:app), got {target!r}")
    module = _import(module_name, app_dir)
    try:
        value = getattr(module, attr)
    except AttributeError:
        apps = [name for name, v in vars(module).items() if isinstance(v, App)]
        found = f" (its Apps: {', '.join(apps)})" if apps else ""
        raise ConfigurationError(
            f"module {module_name!r} has no attribute {attr!r}{found}"
        ) from None
    if not isinstance(value, App) and not _is_asgi_callable(value):
        kind = "class" if inspect.isclass(value) else type(value).__name__
        raise ConfigurationError(
            f"{target!r} is a {kind}, not a polyserve App or an ASGI application"
        )
    return value


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    # The traceback from the user's module on: this file's and importlib's frames
    # come first and say nothing about the mistake. A syntax error has no user
    # frame; its message names the file and line.
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__
        or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
        or tb.tb_frame.f_globals.get("__name__") == "importlib"
    ):
        tb = tb.tb_next
    return tb


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyserve", description="Serve a polyserve App locally, or consume a stream."
    )
    parser.add_argument("--version", action="version", version=f"polyserve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve an App on localhost")
    serve.add_argument("app", help="the app to serve, as 'module:attribute'")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.add_argument("--app-dir", default=".", help="folder to import the app from")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=_LOG_LEVELS,
        help="the least severe ctx.logger and server lines to print (default: info)",
    )
    serve.add_argument(
        "--no-docs",
        action="store_true",
        help="do not serve /openapi.json and the API docs page /docs",
    )
    serve.add_argument(
        "--traceback",
        action="store_true",
        help="when the app fails to import, print the traceback too",
    )
    serve.add_argument("--state", help="keep local messages in this SQLite file (default: memory)")
    serve.add_argument("--fire", action="append", default=[], help="fire this schedule at start")
    from polyserve import _cli_consume, _cli_events, _cli_invoke, _cli_openapi

    _cli_openapi.add_parser(sub)
    _cli_consume.add_parser(sub)
    _cli_events.add_parser(sub)
    _cli_invoke.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polyserve`` command; returns the exit status.

    ``ctx.logger`` lines go to stderr, one JSON object per line as the clouds
    capture them, from ``--log-level`` up; uvicorn's access lines go to stdout.
    """
    args = _parser().parse_args(argv)
    if hasattr(args, "run"):  # a subcommand in a module of its own
        status: int = args.run(args)
        return status
    if args.command == "openapi":
        from polyserve import _cli_openapi

        return _cli_openapi.run(args)
    sys.path.insert(0, args.app_dir)
    if args.command == "consume":
        from polyserve import _cli_consume

        return _cli_consume.run(args)
    try:
        import uvicorn
    except ImportError:
        error = MissingDependencyError(
            "uvicorn", feature="polyserve serve", extra="polyserve-core[serve]"
        )
        print(f"polyserve: error: {error}", file=sys.stderr)
        return 2
    from polyserve.asgi import log_config

    # Apps built while serving (and in --reload's worker, which inherits the
    # environment) serve their API docs: App(docs=None) reads this.
    previous = os.environ.get("POLYSERVE_DOCS")
    os.environ["POLYSERVE_DOCS"] = "0" if args.no_docs else "1"
    try:
        return _serve(args, uvicorn, log_config)
    finally:
        if previous is None:
            del os.environ["POLYSERVE_DOCS"]
        else:
            os.environ["POLYSERVE_DOCS"] = previous


def _serve(args: argparse.Namespace, uvicorn: Any, log_config: Callable[[str], Any]) -> int:
    try:
        app = _load(args.app, args.app_dir)
    except ConfigurationError as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        cause = exc.__cause__
        if cause is not None and args.traceback:
            traceback.print_exception(type(cause), cause, _user_frames(cause.__traceback__))
        elif cause is not None:
            print("polyserve: run with --traceback to see where", file=sys.stderr)
        return 2
    # With --reload uvicorn imports the app itself, in a worker process it restarts;
    # the app was loaded here first only so that a mistake is reported in one line.
    from polyserve.local import serving

    try:
        target, factory = serving(
            app, args.app, args.app_dir, args.state, reload=args.reload, fire=args.fire
        )
    except ConfigurationError as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        target,
        factory=factory,
        host=args.host,
        port=args.port,
        reload=args.reload,
        reload_dirs=[args.app_dir] if args.reload else None,
        log_level=args.log_level,
        # Passed as a configuration rather than installed here, so that the worker
        # process --reload starts gets the handler too.
        log_config=log_config(args.log_level),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
