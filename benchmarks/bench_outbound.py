"""Outbound cost per message: ``Queue.send_batch`` of 100 messages against boto3 used directly.

Both sides send the same 100 small JSON messages to one SQS queue, ten per
``SendMessageBatch`` call, through one boto3 client each:

* polyserve: ``Queue(...).send_batch(payloads)`` on ``AwsBackend`` (encoding, size
  checks, attributes, per-message outcomes);
* boto3: the payloads encoded with ``json.dumps`` and sent with ``send_message_batch``
  in chunks of ten, the ``Successful`` ids collected.

Two modes: ``client`` answers every call in process (a botocore ``before-send`` hook
returns the answer SQS would give), so only client-side work is timed, network and
server excluded; ``server`` sends to moto's server on loopback. Rounds alternate
between the two sides; the result is the median per-message time of each side and
the median of the per-round ratios::

    uv run python -m benchmarks.bench_outbound --rounds 40
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from polyserve.outbound import Queue
from polyserve_aws.outbound import AwsBackend

BATCH = 100
OPTIONS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _answer(request: Any, **_: Any) -> AWSResponse:
    """What SQS answers to SendMessageBatch, made in process (JSON protocol)."""
    entries = json.loads(request.body)["Entries"]
    body = json.dumps(
        {
            "Successful": [
                {
                    "Id": e["Id"],
                    "MessageId": f"m-{e['Id']}",
                    "MD5OfMessageBody": hashlib.md5(e["MessageBody"].encode()).hexdigest(),
                }
                for e in entries
            ]
        }
    ).encode()
    headers = {"content-type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, 200, headers, _Raw(body))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run(rounds: int, mode: str) -> dict[str, float]:
    server = None
    if mode == "server":
        port = _free_port()
        executable = shutil.which("moto_server")
        if executable is None:
            raise SystemExit("moto_server is not installed (moto[server])")
        server = subprocess.Popen(
            [executable, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except urllib.error.HTTPError:  # it answers
                break
            except OSError:
                time.sleep(0.1)
    else:
        endpoint = "http://127.0.0.1:9"  # never reached: the hook answers first
    try:
        raw = boto3.client("sqs", endpoint_url=endpoint, **OPTIONS)  # type: ignore[call-overload]
        backend = AwsBackend(endpoint_url=endpoint, **OPTIONS)
        if mode == "server":
            url = raw.create_queue(QueueName="bench")["QueueUrl"]
        else:
            url = f"{endpoint}/123456789012/bench"
            for client in (raw, backend.client("sqs")):
                client.meta.events.register("before-send.sqs.SendMessageBatch", _answer)
        queue = Queue("bench", target=url, backend=backend)
        payloads = [{"order": i, "customer": f"c-{i % 7}", "total": i * 3.5} for i in range(BATCH)]

        def with_polyserve() -> None:
            ids = queue.send_batch(payloads)
            assert len(ids) == BATCH

        def with_boto3() -> None:
            ids: list[str] = []
            for start in range(0, BATCH, 10):
                entries = [
                    {"Id": str(i), "MessageBody": json.dumps(p, separators=(",", ":"))}
                    for i, p in enumerate(payloads[start : start + 10])
                ]
                answer = raw.send_message_batch(QueueUrl=url, Entries=entries)
                ids.extend(s["MessageId"] for s in answer["Successful"])
            assert len(ids) == BATCH

        for fn in (with_polyserve, with_boto3, with_polyserve, with_boto3):
            fn()  # warm up: clients, endpoints, models
        ours: list[float] = []
        theirs: list[float] = []
        gc.collect()
        for _ in range(rounds):
            t0 = time.perf_counter()
            with_polyserve()
            t1 = time.perf_counter()
            with_boto3()
            t2 = time.perf_counter()
            ours.append((t1 - t0) / BATCH)
            theirs.append((t2 - t1) / BATCH)
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        return {
            "polyserve_us_per_message": statistics.median(ours) * 1e6,
            "boto3_us_per_message": statistics.median(theirs) * 1e6,
            "ratio": statistics.median(ratios),
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--mode", choices=["client", "server", "both"], default="client")
    args = parser.parse_args(argv)
    modes = ["client", "server"] if args.mode == "both" else [args.mode]
    for mode in modes:
        result = run(args.rounds, mode)
        print(json.dumps({"mode": mode, "batch": BATCH, **result}, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
