"""Schema registry decoding: Kafka values in the Confluent wire format.

``SchemaRegistry(url).decode(message)`` reads the schema id a value starts with,
fetches that schema from a Confluent-compatible registry (once per id), and decodes
the value as JSON Schema, Avro or Protobuf. Failures are typed: ``SchemaError`` (and
``UnknownSchemaError``) fail the one record; ``SchemaRegistryError`` means the
registry could not be asked. See the "Schema registry" docs page.

Avro needs ``polyserve-core[avro]``, Protobuf ``polyserve-core[protobuf]``, JSON Schema
validation ``polyserve-core[jsonschema]``; each is imported when a schema of its type
is first used.
"""

from __future__ import annotations

from polyserve.schema_registry._client import Reference, Schema, SchemaRegistry
from polyserve.schema_registry._wire import (
    decode_message_indexes,
    encode,
    encode_message_indexes,
    split,
)
from polyserve.schema_registry.errors import SchemaError, SchemaRegistryError, UnknownSchemaError

__all__ = [
    "Reference",
    "Schema",
    "SchemaError",
    "SchemaRegistry",
    "SchemaRegistryError",
    "UnknownSchemaError",
    "decode_message_indexes",
    "encode",
    "encode_message_indexes",
    "split",
]
