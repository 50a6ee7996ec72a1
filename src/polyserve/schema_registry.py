"""Kafka values in the Confluent Schema Registry wire format, decoded.

A producer that serialises through a schema registry writes each value as::

    byte 0      magic byte, 0
    bytes 1-4   the schema id, big-endian
    (Protobuf)  the message indexes: which message of the schema (zig-zag varints)
    the rest    the value: Avro binary, JSON text, or Protobuf bytes

``SchemaRegistry.decode(message)`` reads that frame from a ``Message`` (any Kafka
record polyserve delivers: MSK, Azure, Knative) or from bytes, finds the schema by
its id, and returns the value: a dict (Avro record, JSON), or the Protobuf message.
Schemas come from a registry's REST API (``GET {url}/schemas/ids/{id}``, cached per
id for the life of the object) or from ``schemas={id: Schema(...)}`` given up front.

* Avro: decoded by ``fastavro`` against the writer's schema (named types from other
  subjects, schema references, are not resolved).
* JSON Schema: the text parsed as JSON and validated against the schema by
  ``jsonschema``.
* Protobuf: the message class is one of ``protobuf_types`` (generated classes),
  picked by the full name the message indexes point at in the schema's ``.proto``
  text; the registry's text cannot be compiled here, so the class must be given.

All three need the ``schema-registry`` extra (``pip install
'polyserve-core[schema-registry]'``), imported on first use. Errors are per value, so
in a batch the record fails alone (or stops an ordered batch, as any failure does):

* ``MalformedEventError`` code ``invalid_wire_format``: no magic byte, too short.
* ``UnknownSchemaError`` (a ``MalformedEventError``, code ``unknown_schema``): the
  registry has no such id, or no class is given for a Protobuf message.
* ``MalformedEventError`` code ``invalid_payload``: the value does not decode, or a
  JSON value does not match its schema.
* ``SchemaRegistryUnavailableError`` (code ``schema_registry_unavailable``, 503): the
  registry could not be reached; the record is redelivered like any failure.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyserve.errors import MalformedEventError, MissingDependencyError, PolyserveError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from polyserve.events import Message

__all__ = [
    "Decoded",
    "Schema",
    "SchemaRegistry",
    "SchemaRegistryUnavailableError",
    "SchemaType",
    "UnknownSchemaError",
    "frame",
]

_MAGIC = 0


class SchemaType(str, enum.Enum):
    """The registry's ``schemaType`` (absent means Avro)."""

    AVRO = "AVRO"
    JSON = "JSON"
    PROTOBUF = "PROTOBUF"


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema as registered: its type and its text (Avro JSON, JSON Schema, ``.proto``)."""

    type: SchemaType
    text: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded value, with the id and type of the schema it was written with."""

    schema_id: int
    type: SchemaType
    value: Any


class UnknownSchemaError(MalformedEventError):
    """The value names a schema id the registry does not have (or cannot be decoded here)."""

    default_code = "unknown_schema"


class SchemaRegistryUnavailableError(PolyserveError):
    """The schema registry could not be reached, or answered with an error."""

    default_code = "schema_registry_unavailable"
    default_status = 503


def frame(data: bytes) -> tuple[int, bytes]:
    """``(schema id, the rest)`` of a value in the wire format.

    Raises:
        MalformedEventError: code ``invalid_wire_format``.
    """
    if len(data) < 5 or data[0] != _MAGIC:
        raise MalformedEventError(
            "the value is not in the schema registry wire format (magic byte and schema id)",
            code="invalid_wire_format",
        )
    return int.from_bytes(data[1:5], "big"), data[5:]


class SchemaRegistry:
    """Decodes values written through a schema registry (see the module docstring).

    ``url``: the registry's base URL (``http://registry:8081``); ``auth``: basic-auth
    ``(user, password)`` for it; ``timeout``: seconds per request. ``schemas``: schemas
    by id, used before (or instead of) the registry. ``protobuf_types``: generated
    Protobuf message classes, found by their full names.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        schemas: Mapping[int, Schema] | None = None,
        protobuf_types: Iterable[type] = (),
        auth: tuple[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/") if url else None
        self.auth = auth
        self.timeout = timeout
        self._schemas: dict[int, Schema] = dict(schemas or {})
        self._decoders: dict[int, Any] = {}
        self._protobuf: dict[str, type] = {}
        for cls in protobuf_types:
            self._protobuf[cls.DESCRIPTOR.full_name] = cls  # type: ignore[attr-defined]

    def decode(self, data: bytes | Message) -> Any:
        """The value in ``data`` (a ``Message``'s body, or bytes); see ``decoded``."""
        return self.decoded(data).value

    def decoded(self, data: bytes | Message) -> Decoded:
        """The value in ``data`` with its schema id and type.

        Raises:
            MalformedEventError: ``invalid_wire_format`` or ``invalid_payload``.
            UnknownSchemaError: no schema with that id (or no class for the message).
            SchemaRegistryUnavailableError: the registry could not be asked.
            MissingDependencyError: the ``schema-registry`` extra is not installed.
        """
        raw = data if isinstance(data, (bytes, bytearray, memoryview)) else data.body
        schema_id, rest = frame(bytes(raw))
        schema = self.schema(schema_id)
        decode = self._decoders.get(schema_id)
        if decode is None:
            decode = self._decoders[schema_id] = _decoder(schema, self._protobuf)
        return Decoded(schema_id, schema.type, decode(rest))

    def schema(self, schema_id: int) -> Schema:
        """The schema with ``schema_id``: given, cached, or fetched from the registry.

        Raises:
            UnknownSchemaError: neither has it.
            SchemaRegistryUnavailableError: the registry could not be asked.
        """
        found = self._schemas.get(schema_id)
        if found is None:
            if self.url is None:
                raise UnknownSchemaError(f"no schema with id {schema_id}")
            found = self._schemas[schema_id] = self._fetch(schema_id)
        return found

    def _fetch(self, schema_id: int) -> Schema:
        import base64
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            f"{self.url}/schemas/ids/{schema_id}",
            headers={"Accept": "application/vnd.schemaregistry.v1+json, application/json"},
        )
        if self.auth is not None:
            token = base64.b64encode(":".join(self.auth).encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                document = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection open until closed
            if exc.code == 404:
                raise UnknownSchemaError(
                    f"the registry has no schema with id {schema_id}"
                ) from None
            raise SchemaRegistryUnavailableError(
                f"the schema registry answered {exc.code} for schema {schema_id}"
            ) from None
        except (OSError, ValueError) as exc:
            raise SchemaRegistryUnavailableError(
                f"the schema registry could not be read: {type(exc).__name__}"
            ) from None
        text = document.get("schema") if isinstance(document, dict) else None
        if not isinstance(text, str):
            raise SchemaRegistryUnavailableError(
                f"the registry's answer for {schema_id} has no schema"
            )
        try:
            kind = SchemaType(document.get("schemaType") or "AVRO")
        except ValueError:
            raise UnknownSchemaError(
                f"schema {schema_id} is of a type this cannot decode: {document.get('schemaType')!r}"
            ) from None
        return Schema(kind, text)


def _invalid(schema: Schema, exc: BaseException) -> MalformedEventError:
    return MalformedEventError(
        f"the value does not decode with its {schema.type.value} schema: {type(exc).__name__}",
        code="invalid_payload",
    )


def _require(module: str, package: str) -> Any:
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            package, feature="schema registry decoding", extra="polyserve-core[schema-registry]"
        ) from exc


def _decoder(schema: Schema, protobuf: Mapping[str, type]) -> Any:
    # One decoding function per schema id, built once.
    if schema.type is SchemaType.AVRO:
        return _avro(schema)
    if schema.type is SchemaType.JSON:
        return _json(schema)
    return _protobuf(schema, protobuf)


def _avro(schema: Schema) -> Any:
    fastavro = _require("fastavro", "fastavro")
    import io

    try:
        parsed = fastavro.parse_schema(json.loads(schema.text))
    except Exception as exc:
        raise UnknownSchemaError(f"the Avro schema cannot be read: {exc}") from None

    def decode(data: bytes) -> Any:
        stream = io.BytesIO(data)
        try:
            value = fastavro.schemaless_reader(stream, parsed)
        except Exception as exc:
            raise _invalid(schema, exc) from None
        if stream.tell() != len(data):
            raise _invalid(schema, ValueError("bytes left over"))
        return value

    return decode


def _json(schema: Schema) -> Any:
    jsonschema = _require("jsonschema", "jsonschema")
    try:
        document = json.loads(schema.text)
        validator = jsonschema.validators.validator_for(document)(document)
    except Exception as exc:
        raise UnknownSchemaError(f"the JSON schema cannot be read: {exc}") from None

    def decode(data: bytes) -> Any:
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise _invalid(schema, exc) from None
        error = next(iter(validator.iter_errors(value)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the value"
            raise MalformedEventError(
                f"{where} does not match its JSON schema: {error.validator} {error.validator_value!r}",
                code="invalid_payload",
            )
        return value

    return decode


def _protobuf(schema: Schema, types: Mapping[str, type]) -> Any:
    _require("google.protobuf", "protobuf")
    package, messages = _proto_messages(schema.text)

    def decode(data: bytes) -> Any:
        indexes, offset = _message_indexes(data)
        names, children = [], messages
        for index in indexes:
            if index >= len(children):
                raise UnknownSchemaError(f"the schema has no message at index path {indexes}")
            name, children = children[index]
            names.append(name)
        full = ".".join([package, *names] if package else names)
        cls = types.get(full)
        if cls is None:
            raise UnknownSchemaError(f"no Protobuf class given for {full!r} (protobuf_types=)")
        try:
            return cls.FromString(data[offset:])  # type: ignore[attr-defined]
        except Exception as exc:
            raise _invalid(schema, exc) from None

    return decode


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    # One zig-zag varint at ``offset``: (value, offset after it).
    shift = result = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise MalformedEventError(
                "the Protobuf message indexes are cut short", code="invalid_wire_format"
            )
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), offset
        shift += 7


def _message_indexes(data: bytes) -> tuple[list[int], int]:
    # A count, then that many indexes; a count of 0 stands for [0], the first message.
    count, offset = _varint(data, 0)
    if count == 0:
        return [0], offset
    if count < 0 or count > 64:
        raise MalformedEventError("bad Protobuf message indexes", code="invalid_wire_format")
    indexes = []
    for _ in range(count):
        index, offset = _varint(data, offset)
        if index < 0:
            raise MalformedEventError("bad Protobuf message indexes", code="invalid_wire_format")
        indexes.append(index)
    return indexes, offset


_Tree = list[tuple[str, "_Tree"]]


def _proto_messages(text: str) -> tuple[str, _Tree]:
    """The package and the message tree (names, nested in order) of ``.proto`` text."""
    import re

    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    package = re.search(r"\bpackage\s+([\w.]+)\s*;", text)
    root: _Tree = []
    stack: list[_Tree | None] = [root]  # None: inside a block that is not a message
    for token in re.finditer(r"\bmessage\s+(\w+)\s*\{|\{|\}", text):
        if token.group(1) is not None:
            parent = stack[-1]
            children: _Tree = []
            if parent is not None:
                parent.append((token.group(1), children))
            stack.append(children if parent is not None else None)
        elif token.group(0) == "{":
            stack.append(None)
        elif len(stack) > 1:
            stack.pop()
    return (package.group(1) if package else ""), root
