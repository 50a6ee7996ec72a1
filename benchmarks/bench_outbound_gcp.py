"""Pub/Sub cost per message: ``Queue.send_batch`` of 100 messages against the SDK used directly.

Three sides send the same 100 small JSON messages to one topic, each through its own
client:

* polyserve: ``Queue(...).send_batch(payloads)`` on ``GcpBackend`` (encoding, size and
  attribute checks, one ``Publish`` request, per-message outcomes);
* gapic: the payloads encoded with ``json.dumps`` and sent with one ``Publish`` call of
  the generated ``PublisherClient`` (the least work the SDK allows);
* publisher: ``google.cloud.pubsub_v1.PublisherClient.publish`` per message, then every
  future's result (the SDK's own batching, as its guide shows).

Two modes: ``stub`` answers ``Publish`` from a gRPC server in this process that does
nothing else, so nearly all the time is client-side work (gRPC on loopback included);
``emulator`` sends to the gcloud Pub/Sub emulator. Rounds alternate between the sides;
the result is each side's median per-message time and the median per-round ratios::

    uv run python -m benchmarks.bench_outbound_gcp --rounds 40 --mode both
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path
from typing import Any

BATCH = 100
TOPIC = "projects/bench/topics/orders"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stub_server(port: int) -> Any:
    """A gRPC server whose ``Publish`` answers at once with one id per message."""
    import grpc  # type: ignore[import-untyped]  # grpcio ships no type information
    from google.pubsub_v1 import PublishRequest, PublishResponse

    counter = iter(range(1, 1 << 62))

    def publish(request: Any, context: Any) -> Any:
        return PublishResponse(message_ids=[str(next(counter)) for _ in request.messages])

    handler = grpc.method_handlers_generic_handler(
        "google.pubsub.v1.Publisher",
        {
            "Publish": grpc.unary_unary_rpc_method_handler(
                publish,
                request_deserializer=PublishRequest.deserialize,
                response_serializer=PublishResponse.serialize,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def _emulator(port: int) -> subprocess.Popen[bytes]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise SystemExit("gcloud is not installed: the emulator mode needs its Pub/Sub emulator")
    launcher = Path(gcloud).resolve().parent.parent / "platform/pubsub-emulator/bin"
    process = subprocess.Popen(
        [str(launcher / "cloud-pubsub-emulator"), "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    raise SystemExit("the Pub/Sub emulator did not start")


def run(rounds: int, mode: str) -> dict[str, float]:
    port = _free_port()
    stopper: Any = _stub_server(port) if mode == "stub" else _emulator(port)
    os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    try:
        import importlib

        from google.pubsub_v1 import PublisherClient, PubsubMessage

        from polyserve.outbound import Queue
        from polyserve_gcp.outbound import GcpBackend

        # The handwritten client is untyped; the generated one is typed.
        pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")
        backend = GcpBackend()
        gapic = PublisherClient()
        publisher = pubsub_v1.PublisherClient()
        if mode == "emulator":
            gapic.create_topic(name=TOPIC)
        queue = Queue("orders", target=TOPIC, backend=backend)
        payloads = [{"order": i, "customer": f"c-{i % 7}", "total": i * 3.5} for i in range(BATCH)]

        def with_polyserve() -> None:
            assert len(queue.send_batch(payloads)) == BATCH

        def with_gapic() -> None:
            messages = [
                PubsubMessage(data=json.dumps(p, separators=(",", ":")).encode()) for p in payloads
            ]
            answer = gapic.publish(topic=TOPIC, messages=messages)
            assert len(answer.message_ids) == BATCH

        def with_publisher() -> None:
            sent = [
                publisher.publish(TOPIC, json.dumps(p, separators=(",", ":")).encode())
                for p in payloads
            ]
            assert len([f.result() for f in sent]) == BATCH

        sides = {"polyserve": with_polyserve, "gapic": with_gapic, "publisher": with_publisher}
        for _ in range(3):
            for fn in sides.values():
                fn()  # warm up: channels, method wrappers
        times: dict[str, list[float]] = {name: [] for name in sides}
        gc.collect()
        for _ in range(rounds):
            for name, fn in sides.items():
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) / BATCH)
        publisher.stop()
        ours = times["polyserve"]
        return {
            **{f"{n}_us_per_message": statistics.median(t) * 1e6 for n, t in times.items()},
            "ratio_to_gapic": statistics.median(
                a / b for a, b in zip(ours, times["gapic"], strict=True)
            ),
            "ratio_to_publisher": statistics.median(
                a / b for a, b in zip(ours, times["publisher"], strict=True)
            ),
        }
    finally:
        if mode == "stub":
            stopper.stop(None)
        else:
            os.killpg(stopper.pid, 15)
            stopper.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--mode", choices=["stub", "emulator", "both"], default="stub")
    args = parser.parse_args(argv)
    modes = ["stub", "emulator"] if args.mode == "both" else [args.mode]
    for mode in modes:
        result = run(args.rounds, mode)
        print(json.dumps({"mode": mode, "batch": BATCH, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
