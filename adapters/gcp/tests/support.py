"""Helpers for the GCP adapter tests: samples, a recording app, and a protobuf writer."""

from __future__ import annotations

import base64
import calendar
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cloudevents.http import CloudEvent

    # functions-framework's context class ships without type information.
    from google.cloud.functions.context import (  # type: ignore[import-untyped]
        Context as LegacyContext,
    )

EVENTS = Path(__file__).parent / "events"


def load(name: str) -> dict[str, Any]:
    """One of this adapter's samples in ``tests/events`` (a fresh copy each time)."""
    data = json.loads((EVENTS / name).read_text())
    assert isinstance(data, dict)
    return data


def sample_kind(sample: Any) -> str | None:
    """How a sample is delivered: ``cloudevent``, ``push``, ``background``, ``http`` or ``None``."""
    from polyserve_gcp.testing import kind_of

    return kind_of(sample)


def structured(sample: dict[str, Any]) -> CloudEvent:
    """The CloudEvent functions-framework builds from ``sample`` sent in structured mode."""
    from cloudevents.http import from_http

    body = json.dumps(sample).encode()
    return from_http({"content-type": "application/cloudevents+json"}, body)


def background_args(sample: dict[str, Any]) -> tuple[Any, LegacyContext]:
    """The ``(data, context)`` functions-framework passes for a background sample."""
    from google.cloud.functions.context import Context

    return sample["data"], Context(**sample["context"])


# -- protobuf ----------------------------------------------------------------
# A writer for the Firestore DocumentEventData schema, from its proto3 JSON form.
# It is checked against hand-computed bytes in test_protobuf.py.


def varint(number: int) -> bytes:
    if number < 0:
        number += 1 << 64
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def timestamp(text: str) -> bytes:
    """A ``google.protobuf.Timestamp`` from ``YYYY-MM-DDTHH:MM:SS[.fraction]Z``."""
    seconds = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    nanos = int(text[19:].strip(".Z").ljust(9, "0") or "0")
    out = tag(1, 0) + varint(seconds) if seconds else b""
    return out + (tag(2, 0) + varint(nanos) if nanos else b"")


def encode_value(value: dict[str, Any]) -> bytes:
    ((kind, raw),) = value.items()
    if kind == "nullValue":
        return tag(11, 0) + varint(0)
    if kind == "booleanValue":
        return tag(1, 0) + varint(int(raw))
    if kind == "integerValue":
        return tag(2, 0) + varint(int(raw))
    if kind == "doubleValue":
        return tag(3, 1) + struct.pack("<d", float(raw))
    if kind == "timestampValue":
        return length_delimited(10, timestamp(raw))
    if kind == "stringValue":
        return length_delimited(17, raw.encode())
    if kind == "bytesValue":
        return length_delimited(18, base64.b64decode(raw))
    if kind == "referenceValue":
        return length_delimited(5, raw.encode())
    if kind == "geoPointValue":
        point = tag(1, 1) + struct.pack("<d", raw["latitude"])
        return length_delimited(8, point + tag(2, 1) + struct.pack("<d", raw["longitude"]))
    if kind == "arrayValue":
        items = b"".join(length_delimited(1, encode_value(v)) for v in raw.get("values", []))
        return length_delimited(9, items)
    if kind == "mapValue":
        return length_delimited(6, encode_fields(1, raw.get("fields", {})))
    raise ValueError(kind)


def encode_fields(number: int, fields: dict[str, Any]) -> bytes:
    return b"".join(
        length_delimited(
            number, length_delimited(1, key.encode()) + length_delimited(2, encode_value(value))
        )
        for key, value in fields.items()
    )


def encode_document(doc: dict[str, Any]) -> bytes:
    out = length_delimited(1, doc["name"].encode()) + encode_fields(2, doc.get("fields", {}))
    if "createTime" in doc:
        out += length_delimited(3, timestamp(doc["createTime"]))
    if "updateTime" in doc:
        out += length_delimited(4, timestamp(doc["updateTime"]))
    return out


def encode_document_event(data: dict[str, Any]) -> bytes:
    out = b""
    if data.get("value"):
        out += length_delimited(1, encode_document(data["value"]))
    if data.get("oldValue"):
        out += length_delimited(2, encode_document(data["oldValue"]))
    paths = data.get("updateMask", {}).get("fieldPaths", [])
    if paths:
        out += length_delimited(3, b"".join(length_delimited(1, p.encode()) for p in paths))
    return out


# -- a real functions-framework server ---------------------------------------

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A port the kernel has just handed out on the loopback interface."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    # http.client rather than urllib: urllib would use a proxy named in the environment.
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (gunicorn and its worker), then SIGKILL what lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def functions_framework(
    source: Path, target: str, signature: str, workdir: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve ``target`` from ``source`` with ``python -m functions_framework``; yield its URL.

    The server listens on a free loopback port and is stopped, with its workers,
    when the block ends. A server that exits or does not answer within
    ``START_TIMEOUT`` fails the test with its output.
    """
    import pytest

    port = free_port()
    log = workdir / f"{target}-{port}.log"
    command = [
        sys.executable, "-m", "functions_framework", "--target", target, "--source", str(source),
        "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    environment = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    for variable in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "K_SERVICE"):
        environment.pop(variable, None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=environment, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(port):
            if process.poll() is not None:
                pytest.fail(f"functions-framework exited:\n{log.read_text()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(
                    f"functions-framework did not answer:\n{log.read_text()}", pytrace=False
                )
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
