"""Outbound cost per message on Azure: ``Queue.send_batch`` of 100 messages to a Storage Queue
against azure-storage-queue used directly.

Both sides send the same 100 small JSON messages to one Storage Queue, base64-encoded,
one ``Put Message`` each (the service has no batch call), through one ``QueueClient``
each:

* polyserve: ``Queue(...).send_batch(payloads)`` on ``AzureBackend`` (encoding, size
  checks, per-message outcomes);
* azure-storage-queue: the payloads encoded with ``json.dumps`` and sent with
  ``send_message``, the ids collected.

Two modes: ``client`` answers every request in process (an azure-core transport that
returns the answer the service would give), so only client-side work is timed, network
and server excluded; ``server`` sends to Azurite on loopback. Rounds alternate between
the two sides; the result is the median per-message time of each side and the median
of the per-round ratios::

    uv run python -m benchmarks.bench_outbound_azure --rounds 20 --mode both
"""

from __future__ import annotations

import argparse
import gc
import http.client
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import RestHttpClientTransportResponse
from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

from polyserve.outbound import Queue
from polyserve_azure.outbound import AzureBackend

BATCH = 100
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_ANSWER = (
    b'<?xml version="1.0" encoding="utf-8"?><QueueMessagesList><QueueMessage>'
    b"<MessageId>5974b586-0df3-4e2d-ad0c-18e3892bfca2</MessageId>"
    b"<InsertionTime>Fri, 05 Dec 2026 07:00:00 GMT</InsertionTime>"
    b"<ExpirationTime>Fri, 12 Dec 2026 07:00:00 GMT</ExpirationTime>"
    b"<PopReceipt>AgAAAAMAAAAAAAAA</PopReceipt>"
    b"<TimeNextVisible>Fri, 05 Dec 2026 07:00:00 GMT</TimeNextVisible>"
    b"</QueueMessage></QueueMessagesList>"
)
_RAW = (
    b"HTTP/1.1 201 Created\r\ncontent-type: application/xml\r\n"
    b"x-ms-request-id: 1\r\nx-ms-version: 2021-02-12\r\n"
    b"content-length: " + str(len(_ANSWER)).encode() + b"\r\n\r\n" + _ANSWER
)


class _Socket:
    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def makefile(self, *_: Any, **__: Any) -> io.BytesIO:
        return self._file


class AnswerTransport(HttpTransport):  # type: ignore[type-arg]
    """Answers every request as the queue service answers ``Put Message``, in process."""

    def send(self, request: Any, **_: Any) -> Any:
        internal = http.client.HTTPResponse(_Socket(_RAW))  # type: ignore[arg-type]
        internal.begin()
        make: Any = RestHttpClientTransportResponse  # untyped in azure-core
        response = make(request=request, internal_response=internal)
        response.read()
        return response

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __exit__(self, *_: object) -> None:
        pass


def _azurite(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    from polyserve_testkit import servers

    private = servers.NODE_DIR / "bin" / "node"
    node = str(private) if private.is_file() else "node"
    package = servers.NODE_MODULES / "azurite"
    blob, port, table = servers.free_ports(3)
    process = subprocess.Popen(
        [
            node,
            str(package / "dist" / "src" / "azurite.js"),
            "--silent",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(blob),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(port),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,  # Azurite writes its debug and extent files here
    )
    for _ in range(200):
        if servers.answers_http(port):
            break
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port}/{ACCOUNT}"


def run(rounds: int, mode: str) -> dict[str, float]:
    server = None
    options: dict[str, Any] = {}
    endpoint = f"http://127.0.0.1:9/{ACCOUNT}"  # never reached in client mode
    with tempfile.TemporaryDirectory() as workdir:
        if mode == "server":
            server, endpoint = _azurite(workdir)
        else:
            options["transport"] = AnswerTransport()
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"QueueEndpoint={endpoint};"
        )
        try:
            raw = QueueClient.from_connection_string(
                connection, "bench", message_encode_policy=BinaryBase64EncodePolicy(), **options
            )
            if mode == "server":
                raw.create_queue()
            backend = AzureBackend(settings={"AzureWebJobsStorage": connection}, **options)
            queue = Queue("bench", backend=backend)
            payloads = [
                {"order": i, "customer": f"c-{i % 7}", "total": i * 3.5} for i in range(BATCH)
            ]

            def with_polyserve() -> None:
                ids = queue.send_batch(payloads)
                assert len(ids) == BATCH

            def with_sdk() -> None:
                ids = [
                    raw.send_message(json.dumps(p, separators=(",", ":")).encode()).id
                    for p in payloads
                ]
                assert len(ids) == BATCH

            for fn in (with_polyserve, with_sdk, with_polyserve, with_sdk):
                fn()  # warm up: clients, connections
            ours: list[float] = []
            theirs: list[float] = []
            gc.collect()
            for _ in range(rounds):
                t0 = time.perf_counter()
                with_polyserve()
                t1 = time.perf_counter()
                with_sdk()
                t2 = time.perf_counter()
                ours.append((t1 - t0) / BATCH)
                theirs.append((t2 - t1) / BATCH)
                if mode == "server":
                    raw.clear_messages()
            ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
            backend.close()
            raw.close()
            return {
                "polyserve_us_per_message": statistics.median(ours) * 1e6,
                "sdk_us_per_message": statistics.median(theirs) * 1e6,
                "ratio": statistics.median(ratios),
            }
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--mode", choices=["client", "server", "both"], default="client")
    args = parser.parse_args(argv)
    modes = ["client", "server"] if args.mode == "both" else [args.mode]
    for mode in modes:
        result = run(args.rounds, mode)
        print(json.dumps({"mode": mode, "batch": BATCH, **result}, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
