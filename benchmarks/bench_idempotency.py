"""Idempotent POST on Redis: ``@idempotent`` against a hand-written handler doing the same.

Both handlers are routes of one ``App`` and are called through ``app.handle_http`` with the
same requests (an ``Idempotency-Key`` header and a small JSON body), sharing one Redis client:

* polyserve: ``@idempotent(RedisStore(...), mode="header")``; a miss is the acquire script,
  the handler and the complete script; a hit is the acquire script returning the stored
  response.
* hand-written: the minimal correct version with plain redis-py calls; a miss is
  ``SET key <in-progress> NX PX <lock> GET``, the handler and ``SET key <body> PX <ttl>``;
  a hit is the same ``SET ... NX GET`` returning the stored body (one round trip too).

Misses use a fresh key per call, hits repeat one key; the two are measured in separate
phases. Calls alternate between the two handlers so that both see the same machine state;
the report gives medians and ratios.

``python -m benchmarks.run --redis-url ...`` puts its results in the benchmark table;
on its own::

    uv run python -m benchmarks.bench_idempotency --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis

from polyserve import App, Context, Headers, HttpRequest, HttpResponse
from polyserve.idempotency import RedisStore, idempotent

if TYPE_CHECKING:
    from collections.abc import Callable

BUDGET = 1.2
TTL_SECONDS = 3600
LOCK_SECONDS = 60
_IN_PROGRESS = b"\x00in-progress"
_JSON = Headers({"content-type": "application/json"})
_REPLAYED = _JSON.with_added("idempotency-replayed", "true")


def _work(order: dict[str, Any]) -> dict[str, Any]:
    return {"id": order["id"], "total": order["quantity"] * 3, "status": "created"}


def build_app(client: redis.Redis[bytes], prefix: str) -> App:
    """An app with the same order handler twice: under ``@idempotent`` and by hand."""
    app = App("bench")
    store = RedisStore(client=client, prefix=f"{prefix}polyserve:")

    @app.post("/polyserve/orders")
    @idempotent(store, mode="header", ttl=TTL_SECONDS, lock_timeout=LOCK_SECONDS)
    def create_order(order: dict[str, Any]) -> HttpResponse:
        return HttpResponse.json(_work(order))

    @app.post("/hand/orders")
    def create_order_by_hand(order: dict[str, Any], request: HttpRequest) -> HttpResponse:
        key = request.headers.get("idempotency-key")
        if not key:
            return HttpResponse.json({"error": "missing idempotency key"}, 400)
        name = f"{prefix}hand:{key}"
        previous: bytes | None = client.set(  # type: ignore[assignment]  # stubs predate get=
            name, _IN_PROGRESS, nx=True, px=LOCK_SECONDS * 1000, get=True
        )
        if previous is not None:
            if previous == _IN_PROGRESS:
                return HttpResponse.json({"error": "in progress"}, 409)
            return HttpResponse(200, _REPLAYED, previous)
        try:
            response = HttpResponse.json(_work(order))
        except BaseException:
            client.delete(name)
            raise
        client.set(name, response.body, px=TTL_SECONDS * 1000)
        return response

    return app


def _request(path: str, key: str) -> HttpRequest:
    body = json.dumps({"id": key, "quantity": 2, "note": "x" * 64}).encode()
    headers = Headers({"content-type": "application/json", "idempotency-key": key})
    return HttpRequest("POST", path, headers=headers, body=body)


def _timed(call: Callable[[], HttpResponse]) -> int:
    start = time.perf_counter_ns()
    response = call()
    elapsed = time.perf_counter_ns() - start
    if response.status != 200:
        raise RuntimeError(f"unexpected response {response.status}: {response.body!r}")
    return elapsed


def run(redis_url: str, *, rounds: int = 3000, warmup: int = 300) -> dict[str, Any]:
    """Measure both handlers on the Redis at ``redis_url``; returns medians (µs) and ratios."""
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    prefix = f"bench:{uuid.uuid4().hex}:"
    app = build_app(client, prefix)
    ctx = Context("bench", invocation_id="bench")
    paths = {"polyserve": "/polyserve/orders", "hand": "/hand/orders"}
    hits = {name: _request(path, "hit-key") for name, path in paths.items()}
    for request in hits.values():
        _timed(functools.partial(app.handle_http, request, ctx))  # store the result once
    samples: dict[str, dict[str, list[int]]] = {}
    gc.collect()
    gc.disable()  # a collection landing in one sample would only add noise
    try:
        # Misses and hits are measured in separate phases, each alternating the two
        # handlers call by call, so that both see the same machine state.
        for case in ("miss", "hit"):
            samples[case] = {name: [] for name in paths}
            for i in range(warmup + rounds):
                for name in ("polyserve", "hand") if i % 2 else ("hand", "polyserve"):
                    request = _request(paths[name], f"miss-{i}") if case == "miss" else hits[name]
                    elapsed = _timed(functools.partial(app.handle_http, request, ctx))
                    if i >= warmup:
                        samples[case][name].append(elapsed)
    finally:
        gc.enable()
        for batch in _chunks(list(client.scan_iter(match=f"{prefix}*", count=1000)), 1000):
            client.delete(*batch)
        client.close()

    report: dict[str, Any] = {"rounds": rounds, "budget": BUDGET}
    for case, by_name in samples.items():
        polyserve_us = statistics.median(by_name["polyserve"]) / 1000
        hand_us = statistics.median(by_name["hand"]) / 1000
        report[case] = {
            "polyserve_us": round(polyserve_us, 1),
            "hand_us": round(hand_us, 1),
            "ratio": round(polyserve_us / hand_us, 3),
        }
    report["within_budget"] = all(report[c]["ratio"] <= BUDGET for c in ("miss", "hit"))
    return report


def _chunks(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--redis-url", required=True, help="e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args(argv)
    report = run(args.redis_url, rounds=args.rounds)
    print(f"idempotent POST through app.handle_http, Redis, {report['rounds']} rounds (median)")
    print(f"{'case':<6} {'polyserve µs':>13} {'hand-written µs':>16} {'ratio':>7}")
    for case in ("miss", "hit"):
        row = report[case]
        print(f"{case:<6} {row['polyserve_us']:>13} {row['hand_us']:>16} {row['ratio']:>7}")
    verdict = "within" if report["within_budget"] else "OVER"
    print(f"budget {BUDGET}x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
