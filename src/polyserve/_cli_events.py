"""``polyserve events PROVIDER KIND [--set key=value ...]``: print a native sample event.

The event comes from the provider adapter's ``testing`` module (its ``BUILDERS``);
``--set`` overrides a builder keyword, its value read as JSON when it parses as JSON
(``--set attempt=2``, ``--set body='{"id": 1}'``) and as a string otherwise.
Exit status: 0 with the event on stdout, 2 with one line on stderr.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from typing import TYPE_CHECKING, Any

from polyserve.errors import ConfigurationError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["add_parser", "body_keyword", "build_event", "builders"]

#: The adapters with event builders, by provider name.
PROVIDERS = {
    "aws": "polyserve_aws.testing",
    "azure": "polyserve_azure.testing",
    "cloudflare": "polyserve_cloudflare.testing",
    "gcp": "polyserve_gcp.testing",
}

# What each builder calls the payload that ``polyserve invoke --body`` sets, by preference.
_BODY_KEYWORDS = ("body", "data", "message", "content", "detail")


def builders(provider: str) -> Mapping[str, Callable[..., Any]]:
    """The ``BUILDERS`` mapping of ``provider``'s adapter, or ``ConfigurationError``."""
    module_name = PROVIDERS.get(provider)
    if module_name is None:
        raise ConfigurationError(
            f"no event builders for provider {provider!r}; known: {', '.join(PROVIDERS)}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.split(".", 1)[0].replace("_", "-")
        raise ConfigurationError(
            f"provider {provider!r} needs the {package} package: pip install {package}"
        ) from None
    table: Mapping[str, Callable[..., Any]] = module.BUILDERS
    return table


def body_keyword(provider: str, kind: str) -> str:
    """The keyword of ``provider``'s ``kind`` builder that takes the payload (``body``, ...)."""
    builder = builders(provider).get(kind)
    params = inspect.signature(builder).parameters if builder is not None else {}
    return next((k for k in _BODY_KEYWORDS if k in params), "body")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` as builder keywords; a pair without ``=`` is an error."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--set takes key=value, got {pair!r}")
        out[key.replace("-", "_")] = _value(value)
    return out


def build_event(provider: str, kind: str, overrides: Mapping[str, Any]) -> Any:
    """The native ``kind`` event of ``provider``; bad kinds and overrides raise ``ConfigurationError``."""
    table = builders(provider)
    builder = table.get(kind)
    if builder is None:
        raise ConfigurationError(
            f"unknown {provider} event kind {kind!r}; known: {', '.join(sorted(table))}"
        )
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(overrides) - set(params))
        if unknown:
            raise ConfigurationError(
                f"unknown override(s) {', '.join(unknown)} for {provider} {kind}; "
                f"known: {', '.join(params)}"
            )
    try:
        return builder(**overrides)
    except TypeError as exc:
        raise ConfigurationError(f"{provider} {kind}: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    try:
        event = build_event(args.provider, args.kind, parse_sets(args.set))
    except ConfigurationError as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(event, indent=2))
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``events`` subcommand to the ``polyserve`` command's subparsers."""
    parser = sub.add_parser("events", help="print a provider's native sample event as JSON")
    parser.add_argument("provider", help=f"the provider ({', '.join(PROVIDERS)})")
    parser.add_argument("kind", help="the event kind (sqs, http_api, schedule, ...)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a builder keyword; the value is read as JSON when it parses",
    )
    parser.set_defaults(run=_run)
