"""Decoders for the three schema types, each importing its library on first use.

* ``JSON``: the payload parsed as JSON, then validated against the schema with
  ``jsonschema`` (``polyserve-core[jsonschema]``) unless validation is turned off.
* ``AVRO``: the payload read with the writer's schema by ``fastavro``
  (``polyserve-core[avro]``), as plain dicts, lists and scalars. Named types the
  schema references (registry ``references``) are parsed first.
* ``PROTOBUF``: the message indexes located, then the message parsed by ``protobuf``
  (``polyserve-core[protobuf]``): into a class of the caller's, or into a class built
  at run time from the file descriptor the registry serves (``?format=serialized``)
  and those of its references; the well-known ``google/protobuf/*.proto`` files come
  from the protobuf package itself.

A payload the schema cannot read raises ``SchemaError`` (code ``undecodable_payload``,
or ``schema_mismatch`` when it parses but fails JSON Schema validation); a schema the
library cannot parse raises ``SchemaError`` with code ``invalid_schema``. The messages
name where and why, never the payload's values, which may be personal data.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from polyserve.errors import MissingDependencyError
from polyserve.schema_registry._wire import decode_message_indexes
from polyserve.schema_registry.errors import SchemaError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from polyserve.schema_registry._client import Schema

__all__ = ["avro", "json_schema", "protobuf", "protobuf_into"]


def _invalid(kind: str, exc: BaseException) -> SchemaError:
    return SchemaError(
        f"the {kind} schema cannot be parsed: {type(exc).__name__}", code="invalid_schema"
    )


def _undecodable(kind: str, why: str) -> SchemaError:
    return SchemaError(f"the payload is not valid {kind} for its schema: {why}",
                       code="undecodable_payload")  # fmt: skip


# -- JSON Schema -------------------------------------------------------------------


def json_schema(
    schema: Schema, references: Sequence[tuple[str, Schema]], *, validate: bool
) -> Callable[[bytes], Any]:
    """A decoder of JSON payloads, validating them against ``schema`` when ``validate``;
    a ``$ref`` to a reference's name resolves to that reference's schema.

    Raises:
        MissingDependencyError: ``validate`` and jsonschema is not installed.
        SchemaError: code ``invalid_schema``, when the schema is not a valid JSON Schema.
    """
    check: Callable[[Any], None] | None = None
    if validate:
        check = _json_validator(schema, references)

    def decode(payload: bytes) -> Any:
        try:
            value = json.loads(payload)
            if check is not None:
                check(value)
        except ValueError as exc:  # UnicodeDecodeError too
            raise _undecodable("JSON", type(exc).__name__) from None
        except RecursionError:
            # Nested deeper than the parser (or the validator) can follow: a hostile
            # payload, refused like bad JSON rather than crashing the invocation.
            raise _undecodable("JSON", "nested too deeply") from None
        return value

    return decode


def _json_validator(
    schema: Schema, references: Sequence[tuple[str, Schema]]
) -> Callable[[Any], None]:
    try:
        import jsonschema
    except ImportError:
        raise MissingDependencyError(
            "jsonschema", feature="JSON Schema validation",
            extra="polyserve-core[jsonschema]",
        ) from None  # fmt: skip
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    try:
        document = json.loads(schema.text)
        cls = jsonschema.validators.validator_for(document)
        cls.check_schema(document)
        resources = [
            (name, Resource.from_contents(json.loads(ref.text), DRAFT202012))
            for name, ref in references
        ]
        validator = cls(document, registry=Registry().with_resources(resources))
    except (ValueError, TypeError, jsonschema.SchemaError) as exc:
        raise _invalid("JSON", exc) from None

    def check(value: Any) -> None:
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        except Unresolvable as exc:
            raise _invalid("JSON", exc) from None
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "<root>"
            # The keyword that failed, not error.message, which quotes the value.
            raise SchemaError(
                f"the payload does not match its JSON Schema at {where}: {error.validator}",
                code="schema_mismatch",
            )

    return check


# -- Avro ----------------------------------------------------------------------------


def avro(
    schema: Schema, references: Sequence[Schema], reader: Mapping[str, Any] | None = None
) -> Callable[[bytes], Any]:
    """A decoder of Avro binary payloads written with ``schema``; with a ``reader``
    schema (self-contained), each value is resolved to it (Avro schema resolution).

    Raises:
        MissingDependencyError: fastavro is not installed.
        SchemaError: code ``invalid_schema``, when a schema cannot be parsed.
    """
    try:
        import fastavro
        from fastavro.read import SchemaResolutionError
    except ImportError:
        raise MissingDependencyError(
            "fastavro", feature="Avro decoding", extra="polyserve-core[avro]"
        ) from None
    named: dict[str, Any] = {}
    try:
        for ref in references:
            fastavro.parse_schema(json.loads(ref.text), named_schemas=named)
        parsed = fastavro.parse_schema(json.loads(schema.text), named_schemas=named)
        resolved = None if reader is None else fastavro.parse_schema(dict(reader))
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise _invalid("Avro", exc) from None
    read = fastavro.schemaless_reader

    def decode(payload: bytes) -> Any:
        buffer = io.BytesIO(payload)
        try:
            value = read(buffer, parsed, resolved)
        except SchemaResolutionError:
            raise SchemaError(
                "the writer's Avro schema does not resolve to the reader's",
                code="schema_mismatch",
            ) from None
        except Exception as exc:  # EOFError, ValueError, IndexError, UnicodeDecodeError...
            raise _undecodable("Avro", type(exc).__name__) from None
        if buffer.tell() != len(payload):
            raise _undecodable("Avro", f"{len(payload) - buffer.tell()} bytes left over")
        return value

    return decode


# -- Protobuf ------------------------------------------------------------------------


def _protobuf() -> Any:
    try:
        from google import protobuf
    except ImportError:
        raise MissingDependencyError(
            "protobuf", feature="Protobuf decoding", extra="polyserve-core[protobuf]"
        ) from None
    return protobuf


def protobuf_into(cls: type[Any]) -> Callable[[bytes], Any]:
    """A decoder of Protobuf payloads into instances of the generated class ``cls``.

    The message indexes are read past, not checked against ``cls``.
    """
    _protobuf()
    from google.protobuf.message import DecodeError

    def decode(payload: bytes) -> Any:
        _, message = decode_message_indexes(payload)
        try:
            return cls.FromString(message)
        except (DecodeError, ValueError) as exc:
            raise _undecodable("Protobuf", type(exc).__name__) from None

    return decode


def _well_known(path: str) -> Any:
    """The descriptor of a well-known ``google/protobuf/*.proto`` file, which registries
    do not serve: from the module protobuf ships for it (``timestamp_pb2``...), imported
    here, since the default pool holds a file only once its module is imported."""
    import importlib

    from google.protobuf import descriptor_pb2

    module = importlib.import_module(path.removesuffix(".proto").replace("/", ".") + "_pb2")
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    return proto


def protobuf(descriptor: bytes, references: Sequence[tuple[str, bytes]]) -> Callable[[bytes], Any]:
    """A decoder of Protobuf payloads whose classes are built from serialized file
    descriptors: ``descriptor`` and those of its ``references`` (each with the name
    it is imported by), dependencies first.

    Raises:
        MissingDependencyError: protobuf is not installed.
        SchemaError: code ``invalid_schema``, when the descriptors cannot be loaded.
    """
    _protobuf()
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.message import DecodeError

    pool = descriptor_pool.DescriptorPool()
    try:
        protos = []
        for name, serialized in references:
            proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
            # Imported by the reference's name, whatever name the registry serialized
            # the file under (Confluent's registry may use a default one).
            proto.name = name
            protos.append(proto)
        main = descriptor_pb2.FileDescriptorProto.FromString(descriptor)
        known = {p.name for p in protos}
        for proto in (*protos, main):
            for dependency in proto.dependency:
                if dependency not in known and dependency.startswith("google/protobuf/"):
                    pool.Add(_well_known(dependency))
                    known.add(dependency)
            pool.Add(proto)
        file = pool.FindFileByName(main.name)
    except Exception as exc:  # DecodeError, TypeError, KeyError, ImportError...
        raise _invalid("Protobuf", exc) from None
    classes: dict[tuple[int, ...], Any] = {}

    def message_class(indexes: list[int]) -> Any:
        key = tuple(indexes)
        cls = classes.get(key)
        if cls is None:
            try:
                found = file.message_types_by_name[main.message_type[indexes[0]].name]
                for index in indexes[1:]:
                    found = found.nested_types[index]
            except IndexError:
                raise SchemaError(
                    f"message indexes {indexes} name no message of the schema",
                    code="undecodable_payload",
                ) from None
            cls = classes[key] = message_factory.GetMessageClass(found)
        return cls

    def decode(payload: bytes) -> Any:
        indexes, message = decode_message_indexes(payload)
        cls = message_class(indexes)
        try:
            return cls.FromString(message)
        except (DecodeError, ValueError) as exc:
            raise _undecodable("Protobuf", type(exc).__name__) from None

    return decode
