"""``polyserve invoke MODULE:APP --provider P (--event FILE | KIND [--body ...])``.

Runs the app once through the provider adapter's real entry point with a native
event (read from a file, or built by ``polyserve events``' builders) and prints the
native result as JSON: the HTTP response document, the batch response, ``null``.
AWS runs ``polyserve_aws.handler``; Azure, Google Cloud and Cloudflare run the
``invoke`` of their adapter's ``testing`` module (the generated Azure function,
functions-framework's target, the Worker's handler), whose HTTP answer is
``{"status", "headers", "body"}`` and whose queue answer on Cloudflare lists how each
message was settled. Exit status: 0 when the invocation succeeded, 1 when it failed
(an HTTP 5xx, a batch with failed or retried items, an exception, an event the entry
point does not handle), 2 when the command line, the app or the event file is wrong;
every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyserve._cli_events import PROVIDERS as _BUILDER_MODULES
from polyserve._cli_events import body_keyword, build_event, parse_sets
from polyserve.errors import ConfigurationError, UnsupportedEventError

if TYPE_CHECKING:
    from polyserve.app import App

__all__ = ["add_parser", "invoke"]

#: The providers whose entry point ``invoke`` can run.
PROVIDERS = ("aws", "azure", "cloudflare", "gcp")


def _read(path: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read event file {path!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"event file {path!r} is not JSON: {exc}") from None


def _failed(provider: str, result: Any) -> bool:
    if not isinstance(result, dict):
        return False
    if result.get("batchItemFailures"):
        return True
    messages = result.get("messages")
    if provider == "cloudflare" and isinstance(messages, list):
        return any(m.get("settled") != "acked" for m in messages)
    status = result.get("statusCode" if provider == "aws" else "status")
    return isinstance(status, int) and status >= 500


def invoke(app: App, provider: str, event: Any) -> Any:
    """Run ``app`` through ``provider``'s entry point with ``event``; return the native result."""
    if provider == "aws":
        import polyserve_aws  # type: ignore[import-not-found,unused-ignore]
        from polyserve_aws.testing import (  # type: ignore[import-not-found,unused-ignore]
            LambdaContext,
        )

        result = polyserve_aws.handler(app)(event, LambdaContext("invoke-1"))
        return json.loads(json.dumps(result))
    if provider not in PROVIDERS:
        raise ConfigurationError(
            f"cannot invoke provider {provider!r}; known: {', '.join(PROVIDERS)}"
        )
    module_name = _BUILDER_MODULES[provider]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.split(".", 1)[0].replace("_", "-")
        raise ConfigurationError(
            f"provider {provider!r} needs the {package} package: pip install {package}"
        ) from None
    # The adapter's invoke raises UnsupportedEventError for an event not in its formats.
    return json.loads(json.dumps(module.invoke(app, event)))


def _run(args: argparse.Namespace) -> int:
    from polyserve._cli import _load
    from polyserve.app import App

    sys.path.insert(0, args.app_dir)
    try:
        if args.event is not None and args.kind is not None:
            raise ConfigurationError("give either --event FILE or an event KIND, not both")
        if args.event is not None:
            event = _read(args.event)
        elif args.kind is not None:
            overrides = parse_sets(args.set)
            if args.body is not None:
                overrides.setdefault(body_keyword(args.provider, args.kind), args.body)
            event = build_event(args.provider, args.kind, overrides)
        else:
            raise ConfigurationError("give an event: --event FILE or an event KIND (sqs, ...)")
        app = _load(args.app, args.app_dir)
        if not isinstance(app, App):
            raise ConfigurationError(f"{args.app!r} is not a polyserve App")
    except ConfigurationError as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        return 2
    try:
        result = invoke(app, args.provider, event)
    except ConfigurationError as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        return 2
    except UnsupportedEventError as exc:
        print(
            f"polyserve: error: the event is not one the {args.provider} entry point handles: {exc}",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # the handler's own failure: the platform would retry
        message = " ".join(str(exc).split())
        print(
            f"polyserve: error: invocation failed: {type(exc).__name__}: {message}", file=sys.stderr
        )
        return 1
    print(json.dumps(result, indent=2))
    return 1 if _failed(args.provider, result) else 0


def _own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyserve invoke", description="Run an App once through a provider's entry point."
    )
    parser.add_argument("app", help="the app, as 'module:attribute'")
    parser.add_argument("kind", nargs="?", help="an event kind to build (see 'polyserve events')")
    parser.add_argument("--provider", required=True, choices=sorted(PROVIDERS))
    parser.add_argument("--event", metavar="FILE", help="a JSON file holding the native event")
    parser.add_argument("--body", help="the built event's body (a message, a request body)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--app-dir", default=".", help="folder to import the app from")
    return parser


def _main(args: argparse.Namespace) -> int:
    # Parsed here, intermixed, so that the event kind may follow the options.
    return _run(_own_parser().parse_intermixed_args(args.argv))


def add_parser(sub: Any) -> None:
    """Add the ``invoke`` subcommand to the ``polyserve`` command's subparsers."""
    parser = sub.add_parser(
        "invoke",
        help="run an App once through a provider's entry point",
        add_help=False,
        usage="polyserve invoke MODULE:APP --provider P (--event FILE | KIND [--body BODY])",
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    parser.set_defaults(run=_main)
