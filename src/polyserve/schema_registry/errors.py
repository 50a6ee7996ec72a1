"""The errors of ``polyserve.schema_registry``.

They belong to the tree of ``polyserve.errors``, which also gives them by name,
but live here so that an app that does not use a schema registry does not build
them at cold start.
"""

from __future__ import annotations

from polyserve.errors import EventError, PolyserveError

__all__ = ["SchemaError", "SchemaRegistryError", "UnknownSchemaError"]


class SchemaError(EventError):
    """A record's payload cannot be decoded with the schema it names (see
    ``polyserve.schema_registry``): not in the wire format, not matching its schema,
    or naming a schema that cannot be read. The record fails alone.
    """

    default_code = "schema_error"


class UnknownSchemaError(SchemaError):
    """The schema registry has no schema with the id a payload names."""

    default_code = "unknown_schema"

    def __init__(self, schema_id: int) -> None:
        super().__init__(f"the schema registry has no schema with id {schema_id}")
        self.schema_id = schema_id


class SchemaRegistryError(PolyserveError):
    """The schema registry could not be asked: unreachable, an error status, a reply
    that is not a schema. The record fails and is delivered again.

    ``code`` is ``registry_unavailable`` (a network failure or 5xx, worth a retry) or
    ``registry_error`` (refused credentials, another 4xx, an unreadable reply).
    """

    default_code = "registry_unavailable"
    default_status = 503
