"""``polyserve openapi MODULE:APP [--yaml]``: print an app's OpenAPI document.

Exit status: 0 once printed, 2 when the command line or the app it names is wrong,
or a route has no schema; each reported in one line on stderr.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from polyserve.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``openapi`` subcommand to the ``polyserve`` command line."""
    parser = sub.add_parser("openapi", help="print an App's OpenAPI 3.1 document")
    parser.add_argument("app", help="the app, as 'module:attribute'")
    parser.add_argument("--yaml", action="store_true", help="print YAML instead of JSON")
    parser.add_argument(
        "--title", default=None, help="the document's title (default: the app's name)"
    )
    parser.add_argument("--api-version", default="0.1.0", help="the API's version (info.version)")
    parser.add_argument("--app-dir", default=".", help="folder to import the app from")


def run(args: argparse.Namespace) -> int:
    """Print the document of ``args.app``; returns the exit status."""
    from polyserve._cli import _load
    from polyserve.app import App

    sys.path.insert(0, args.app_dir)
    try:
        app = _load(args.app, args.app_dir)
        if not isinstance(app, App):
            raise ConfigurationError(f"{args.app!r} is not a polyserve App")
        document = app.openapi(title=args.title, version=args.api_version)
        if args.yaml:
            try:
                import yaml
            except ImportError:
                raise MissingDependencyError(
                    "PyYAML", feature="polyserve openapi --yaml", extra="pyyaml"
                ) from None
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    except (ConfigurationError, MissingDependencyError) as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
