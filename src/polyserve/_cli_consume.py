"""``polyserve consume redis://HOST:PORT/STREAM --group G module:app``.

Runs the app's ``@app.queue`` handlers from a Redis Stream consumer group until SIGTERM
or SIGINT, then finishes and acknowledges the batch in hand (see
``polyserve.consumers.redis_streams``). Exit status: 0 after a clean stop, 2 when the
command line or the app is wrong or redis-py is not installed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING

from polyserve.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``consume`` subcommand to ``sub``."""
    consume = sub.add_parser("consume", help="run an App's queue handlers from a Redis Stream")
    consume.add_argument("source", help="redis://HOST:PORT/STREAM (or redis://HOST:PORT/DB/STREAM)")
    consume.add_argument("app", help="the app, as 'module:attribute'")
    consume.add_argument("--group", required=True, help="the consumer group (created if missing)")
    consume.add_argument("--consumer", help="this consumer's name (default: a random one)")
    consume.add_argument("--name", help="the queue registration to run (default: the stream)")
    consume.add_argument("--count", type=int, default=10, help="entries per batch (default 10)")
    consume.add_argument(
        "--min-idle", type=float, default=60.0,
        help="seconds an entry stays pending before another consumer reclaims it (default 60)",
    )  # fmt: skip
    consume.add_argument(
        "--start", default="0",
        help="where a new group starts: 0 (the whole stream, default) or $ (new entries only)",
    )  # fmt: skip
    consume.add_argument("--app-dir", default=".", help="folder to import the app from")


def run(args: argparse.Namespace) -> int:
    """Run the consumer the parsed ``args`` describe; returns the exit status."""
    from polyserve._cli import _load
    from polyserve.app import App
    from polyserve.consumers.redis_streams import RedisStreamConsumer, parse_url

    try:
        target = parse_url(args.source)
        app = _load(args.app, args.app_dir)
        if not isinstance(app, App):
            raise ConfigurationError(f"{args.app!r} is not a polyserve App")
        if args.count < 1 or args.min_idle <= 0:
            raise ConfigurationError("--count and --min-idle must be positive")
    except ConfigurationError as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        return 2
    consumer = RedisStreamConsumer(
        app, target.url, target.stream, args.group, consumer=args.consumer, name=args.name,
        count=args.count, min_idle=args.min_idle, start=args.start,
    )  # fmt: skip

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, consumer.stop)
        try:
            await consumer.run()
        finally:
            await app.aclose()

    try:
        asyncio.run(main())
    except (ConfigurationError, MissingDependencyError) as exc:
        print(f"polyserve: error: {exc}", file=sys.stderr)
        return 2
    return 0
