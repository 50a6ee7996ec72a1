"""Confluent wire-format values: Avro, JSON Schema and Protobuf, from given schemas or a registry."""

from __future__ import annotations

import io
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import fastavro
import pytest

# protobuf ships without type information here (no types-protobuf in the dev tools).
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)

from polyserve import App, Context, Message, Trigger
from polyserve.errors import MalformedEventError
from polyserve.schema_registry import (
    Schema,
    SchemaRegistry,
    SchemaRegistryUnavailableError,
    SchemaType,
    UnknownSchemaError,
    frame,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

WALK_AVRO = json.dumps({
    "type": "record", "name": "Walk", "namespace": "kennel",
    "fields": [
        {"name": "pet", "type": "string"},
        {"name": "minutes", "type": "int"},
        {"name": "leash", "type": ["null", "string"], "default": None},
    ],
})  # fmt: skip
WALK_JSON = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"pet": {"type": "string"}, "minutes": {"type": "integer", "minimum": 0}},
    "required": ["pet", "minutes"],
})  # fmt: skip
WALK_PROTO = """
syntax = "proto3";
// the kennel's events
package kennel.v1;

message Feeding { string pet = 1; }
message Walk {
  string pet = 1;
  int32 minutes = 2;
  message Leg { int32 metres = 1; }
  enum Pace { SLOW = 0; FAST = 1; }
}
"""


def framed(schema_id: int, payload: bytes, indexes: bytes = b"") -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + indexes + payload


def avro_bytes(value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(WALK_AVRO)), value)
    return out.getvalue()


def proto_classes() -> dict[str, Any]:
    """The classes protoc would generate for WALK_PROTO, built from a descriptor."""
    file = descriptor_pb2.FileDescriptorProto(name="kennel_test.proto", package="kennel.v1")
    file.syntax = "proto3"
    feeding = file.message_type.add(name="Feeding")
    feeding.field.add(name="pet", number=1, type=9, label=1)
    walk = file.message_type.add(name="Walk")
    walk.field.add(name="pet", number=1, type=9, label=1)
    walk.field.add(name="minutes", number=2, type=5, label=1)
    leg = walk.nested_type.add(name="Leg")
    leg.field.add(name="metres", number=1, type=5, label=1)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"kennel.v1.{name}"))
        for name in ("Feeding", "Walk", "Walk.Leg")
    }


def registry(**extra: Any) -> SchemaRegistry:
    return SchemaRegistry(
        schemas={
            1: Schema(SchemaType.AVRO, WALK_AVRO),
            2: Schema(SchemaType.JSON, WALK_JSON),
            3: Schema(SchemaType.PROTOBUF, WALK_PROTO),
        },
        **extra,
    )


def test_avro() -> None:
    value = {"pet": "rex", "minutes": 25, "leash": "red"}
    decoded = registry().decoded(framed(1, avro_bytes(value)))
    assert (decoded.schema_id, decoded.type, decoded.value) == (1, SchemaType.AVRO, value)


def test_json_schema_validates() -> None:
    assert registry().decode(framed(2, b'{"pet": "bella", "minutes": 30}')) == {
        "pet": "bella", "minutes": 30,
    }  # fmt: skip
    with pytest.raises(MalformedEventError) as info:
        registry().decode(framed(2, b'{"pet": "bella", "minutes": -1}'))
    assert info.value.code == "invalid_payload"
    assert "minutes" in info.value.detail
    with pytest.raises(MalformedEventError, match="JSON"):
        registry().decode(framed(2, b"{not json"))


def test_protobuf_by_message_indexes() -> None:
    classes = proto_classes()
    reg = registry(protobuf_types=classes.values())
    walk = classes["Walk"](pet="rex", minutes=12).SerializeToString()
    # [1]: the second top-level message; encoded as count 1, index 1 (zig-zag: 2, 2).
    assert reg.decode(framed(3, walk, b"\x02\x02")) == classes["Walk"](pet="rex", minutes=12)
    feeding = classes["Feeding"](pet="bella").SerializeToString()
    assert reg.decode(framed(3, feeding, b"\x00")).pet == "bella"  # [0] written as one 0
    leg = classes["Walk.Leg"](metres=400).SerializeToString()
    assert reg.decode(framed(3, leg, b"\x04\x02\x00")).metres == 400  # [1, 0]: Walk.Leg

    with pytest.raises(UnknownSchemaError, match="index path"):
        reg.decode(framed(3, walk, b"\x02\x0a"))  # [5]: no such message
    with pytest.raises(UnknownSchemaError, match=r"kennel\.v1\.Walk"):
        registry().decode(framed(3, walk, b"\x02\x02"))  # no class given
    with pytest.raises(MalformedEventError) as info:
        reg.decode(framed(3, b"", b"\x02"))  # a count with no index after it
    assert info.value.code == "invalid_wire_format"
    with pytest.raises(MalformedEventError) as info:
        reg.decode(framed(3, b"\xff\xff\xff", b"\x00"))
    assert info.value.code == "invalid_payload"


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00", b"\x01\x00\x00\x00\x01{}", b"{}"])
def test_not_the_wire_format(data: bytes) -> None:
    with pytest.raises(MalformedEventError) as info:
        registry().decode(data)
    assert info.value.code == "invalid_wire_format"


def test_bad_avro_bytes_and_an_unknown_id() -> None:
    with pytest.raises(MalformedEventError) as info:
        registry().decode(framed(1, b"\x02"))  # a string length with nothing after it
    assert info.value.code == "invalid_payload"
    with pytest.raises(MalformedEventError, match="does not decode"):
        registry().decode(framed(1, avro_bytes({"pet": "rex", "minutes": 1}) + b"\x00"))
    with pytest.raises(UnknownSchemaError) as unknown:
        registry().decode(framed(99, b"{}"))
    assert unknown.value.code == "unknown_schema"
    assert frame(framed(7, b"x")) == (7, b"x")


def test_an_unknown_schema_fails_its_record_only() -> None:
    reg = registry()
    app = App("walks")
    totals: list[int] = []

    @app.stream("walks")
    def walk(message: Message) -> None:
        totals.append(reg.decode(message)["minutes"])

    records = [
        Message(id="w-0", body=framed(1, avro_bytes({"pet": "rex", "minutes": 5})), source="walks"),
        Message(id="w-1", body=framed(42, b"\x00"), source="walks"),
        Message(id="w-2", body=framed(2, b'{"pet": "bella", "minutes": 7}'), source="walks"),
    ]
    result = app.handle_batch(
        Trigger.STREAM, records, Context("test"), decode=lambda m: ("walks", m),
        item_id=lambda m: m.id,
    )  # fmt: skip
    assert totals == [5, 7]
    assert result.failed_ids == ["w-1"]
    assert isinstance(result.failed[0].error, UnknownSchemaError)


# -- a registry over HTTP --------------------------------------------------------


class _Registry(BaseHTTPRequestHandler):
    requests: list[tuple[str, str | None]]

    def do_GET(self) -> None:
        self.requests.append((self.path, self.headers.get("Authorization")))
        answers = {
            "/schemas/ids/1": (200, {"schema": WALK_AVRO}),  # no schemaType: Avro
            "/schemas/ids/2": (200, {"schema": WALK_JSON, "schemaType": "JSON"}),
            "/schemas/ids/5": (200, {"schema": "x", "schemaType": "THRIFT"}),
            "/schemas/ids/6": (500, {"error_code": 50001}),
        }
        status, document = answers.get(self.path, (404, {"error_code": 40403}))
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/vnd.schemaregistry.v1+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    handler: Any = type("Handler", (_Registry,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def test_schemas_are_fetched_once_per_id(served: tuple[str, list[tuple[str, str | None]]]) -> None:
    url, requests = served
    reg = SchemaRegistry(url, auth=("kennel", "s3cret"))
    value = {"pet": "rex", "minutes": 3, "leash": None}
    assert reg.decode(framed(1, avro_bytes(value))) == value
    assert reg.decode(framed(1, avro_bytes(value))) == value
    assert reg.decode(framed(2, b'{"pet": "a", "minutes": 1}'))["pet"] == "a"
    assert [path for path, _ in requests] == ["/schemas/ids/1", "/schemas/ids/2"]
    assert requests[0][1] == "Basic a2VubmVsOnMzY3JldA=="

    with pytest.raises(UnknownSchemaError, match="no schema with id 9"):
        reg.decode(framed(9, b"{}"))
    with pytest.raises(UnknownSchemaError, match="THRIFT"):
        reg.decode(framed(5, b"{}"))
    with pytest.raises(SchemaRegistryUnavailableError) as info:
        reg.decode(framed(6, b"{}"))
    assert info.value.status == 503


def test_an_unreachable_registry() -> None:
    with pytest.raises(SchemaRegistryUnavailableError):
        SchemaRegistry("http://127.0.0.1:9", timeout=1).decode(framed(1, b"{}"))
