"""The schema registry client: schemas by id, fetched once, and values decoded with them."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polyserve.errors import ConfigurationError
from polyserve.schema_registry import _decoders
from polyserve.schema_registry._wire import split
from polyserve.schema_registry.errors import SchemaError, SchemaRegistryError, UnknownSchemaError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from polyserve.events import Message

__all__ = ["Reference", "Schema", "SchemaRegistry"]

_TYPES = frozenset(("AVRO", "JSON", "PROTOBUF"))
_ACCEPT = "application/vnd.schemaregistry.v1+json, application/json"
# Nested references deeper than this are a cycle, or a registry not worth following.
_MAX_DEPTH = 16
# Unknown ids remembered at most; past it, the expired ones (or all) are forgotten.
_MAX_UNKNOWN = 1024


@dataclass(frozen=True, slots=True)
class Reference:
    """A schema another one imports: its ``name`` there, and where the registry keeps it."""

    name: str
    subject: str
    version: int


@dataclass(frozen=True, slots=True)
class Schema:
    """A registered schema: its ``type`` (``"AVRO"``, ``"JSON"`` or ``"PROTOBUF"``),
    its ``text`` and the ``references`` it imports.

    ``descriptor`` is, for Protobuf, the serialized ``FileDescriptorProto`` that dynamic
    decoding needs (the registry's ``?format=serialized`` form); the client fetches it
    when it needs it, so a schema given to ``SchemaRegistry(schemas=...)`` carries it
    only for Protobuf payloads decoded without a class.
    """

    type: str
    text: str
    references: tuple[Reference, ...] = ()
    descriptor: bytes | None = None


class SchemaRegistry:
    """A Confluent-compatible schema registry, and the decoder of the values it describes.

    ``url`` is the registry's base URL; credentials are ``username`` and ``password``
    (HTTP Basic, as Confluent Cloud's API key and secret), or a bearer ``token``, or
    the user information of the URL (``https://key:secret@host``), which is moved
    out of it. ``schemas`` preloads schemas by id (a registry without ``url`` has only
    those: handy in tests). Creating one does no I/O: a schema is fetched
    (``GET /schemas/ids/{id}``) the first time a value names it, then kept, since a
    registry never changes the schema behind an id. An id the registry does not know
    is remembered as unknown for ``unknown_ttl`` seconds, so a run of bad records does
    not flood it. ``validate_json`` checks JSON payloads against their JSON Schema.

    Instances are thread-safe; create one per process (a module global) and share it.

    Raises:
        ConfigurationError: ``url`` is not an http(s) URL, or both a token and a
            password are given.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        schemas: Mapping[int, Schema] | None = None,
        validate_json: bool = True,
        unknown_ttl: float = 30.0,
    ) -> None:
        self.url: str | None = None
        if url is not None:
            url, username, password = _split_credentials(url, username, password)
            self.url = url.rstrip("/")
        if token is not None and (username is not None or password is not None):
            raise ConfigurationError("give a schema registry a token or a password, not both")
        self._headers = {"Accept": _ACCEPT, **(headers or {})}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        elif username is not None or password is not None:
            import base64

            pair = f"{username or ''}:{password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        self.timeout = timeout
        self.validate_json = validate_json
        self.unknown_ttl = unknown_ttl
        self._schemas: dict[int, Schema] = dict(schemas or {})
        self._decoders: dict[tuple[int, Any, int], tuple[Any, Callable[[bytes], Any]]] = {}
        self._unknown: dict[int, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = "SCHEMA_REGISTRY_",
        **options: Any,
    ) -> SchemaRegistry:  # fmt: skip
        """A registry set up from settings: ``SCHEMA_REGISTRY_URL`` and, if set,
        ``..._USERNAME`` and ``..._PASSWORD``, or ``..._TOKEN`` (Lambda environment
        variables, Azure app settings, Cloud Run variables all reach ``os.environ``).

        ``options`` are passed on to the constructor.

        Raises:
            ConfigurationError: ``SCHEMA_REGISTRY_URL`` is not set.
        """
        if environ is None:
            import os

            environ = os.environ
        url = environ.get(prefix + "URL")
        if not url:
            raise ConfigurationError(f"{prefix}URL is not set")
        # An empty setting is an unset one (app settings are often declared empty).
        return cls(
            url, username=environ.get(prefix + "USERNAME") or None,
            password=environ.get(prefix + "PASSWORD") or None,
            token=environ.get(prefix + "TOKEN") or None, **options,
        )  # fmt: skip

    def __repr__(self) -> str:
        # Never the credentials.
        return f"SchemaRegistry({self.url!r})"

    # -- decoding --------------------------------------------------------------------

    def decode(
        self,
        value: Message | bytes | bytearray | memoryview,
        *,
        into: type[Any] | None = None,
        reader: Mapping[str, Any] | None = None,
    ) -> Any:
        """The value a wire-format payload holds, decoded with the schema it names.

        ``value`` is a ``Message`` (its ``body`` is read) or bytes. JSON and Avro
        values come back as dicts, lists and scalars; Protobuf values as messages of
        ``into`` (a generated class) or, without it, of a class built from the
        registry's descriptor. ``into`` applies to Protobuf values only. ``reader``
        (Avro only) is the schema the handler reads with: each value is resolved from
        its writer's schema to it, as Avro schema evolution prescribes (new fields
        take their defaults, removed ones are dropped); it must be self-contained.

        Raises:
            SchemaError: not the wire format (``invalid_wire_format``), a payload its
                schema cannot read (``undecodable_payload``, ``schema_mismatch``), a
                schema that cannot be parsed (``invalid_schema``).
            UnknownSchemaError: the registry has no schema with that id.
            SchemaRegistryError: the registry could not be asked; try again later.
            MissingDependencyError: the library the schema type needs is not installed.
        """
        data = value if isinstance(value, (bytes, bytearray, memoryview)) else value.body
        schema_id, payload = split(bytes(data))
        return self.decoder(schema_id, into=into, reader=reader)(payload)

    def decoder(
        self,
        schema_id: int,
        *,
        into: type[Any] | None = None,
        reader: Mapping[str, Any] | None = None,
    ) -> Callable[[bytes], Any]:
        """The decoder of payloads (after the 5-byte header) written with schema ``schema_id``.

        Built once per schema (and ``into`` class, or ``reader`` schema object: pass
        the same one each time, a module constant), then reused. Raises as ``decode``.
        """
        key = (schema_id, into, id(reader))
        found = self._decoders.get(key)
        # The reader is kept with its decoder, so its id is not reused while cached.
        if found is not None and found[0] is reader:
            return found[1]
        schema = self.schema(schema_id)
        if schema.type == "JSON":
            refs = self._references(schema, "JSON") if self.validate_json else []
            built = _decoders.json_schema(schema, refs, validate=self.validate_json)
        elif schema.type == "AVRO":
            named = self._references(schema, "AVRO")
            built = _decoders.avro(schema, [ref for _, ref in named], reader)
        elif into is not None:
            built = _decoders.protobuf_into(into)
        else:
            refs = self._references(schema, "PROTOBUF")
            descriptors = [(name, _descriptor(ref, f"reference {name!r}")) for name, ref in refs]
            built = _decoders.protobuf(_descriptor(self._with_descriptor(schema_id, schema),
                                                   f"schema {schema_id}"), descriptors)  # fmt: skip
        with self._lock:
            self._decoders[key] = (reader, built)
        return built

    # -- schemas ---------------------------------------------------------------------

    def schema(self, schema_id: int) -> Schema:
        """The schema registered with id ``schema_id``, fetched on first use.

        Raises:
            UnknownSchemaError: the registry has no such schema (or had none within
                ``unknown_ttl`` seconds).
            SchemaRegistryError: the registry could not be asked.
        """
        found = self._schemas.get(schema_id)
        if found is not None:
            return found
        until = self._unknown.get(schema_id)
        if until is not None and time.monotonic() < until:
            raise UnknownSchemaError(schema_id)
        if self.url is None:
            raise UnknownSchemaError(schema_id)
        try:
            reply = self._get(f"/schemas/ids/{schema_id}")
        except UnknownSchemaError:
            now = time.monotonic()
            with self._lock:
                if len(self._unknown) >= _MAX_UNKNOWN:
                    # Records naming ever new ids must not grow this without bound.
                    self._unknown = {k: t for k, t in self._unknown.items() if t > now}
                    if len(self._unknown) >= _MAX_UNKNOWN:
                        self._unknown.clear()
                self._unknown[schema_id] = now + self.unknown_ttl
            raise
        schema = _schema(reply, f"schema {schema_id}")
        with self._lock:
            self._schemas[schema_id] = schema
            self._unknown.pop(schema_id, None)
        return schema

    def _with_descriptor(self, schema_id: int, schema: Schema) -> Schema:
        if schema.descriptor is not None or self.url is None:
            return schema
        reply = self._get(f"/schemas/ids/{schema_id}?format=serialized")
        full = _schema(reply, f"schema {schema_id}", serialized=True)
        with self._lock:
            self._schemas[schema_id] = full
        return full

    def _references(self, schema: Schema, kind: str) -> list[tuple[str, Schema]]:
        """Every schema ``schema`` imports, transitively, dependencies first, each once,
        with the name it is imported by."""
        ordered: list[tuple[str, Schema]] = []
        seen: set[tuple[str, int]] = set()

        def visit(refs: tuple[Reference, ...], depth: int) -> None:
            for ref in refs:
                key = (ref.subject, ref.version)
                if key in seen:
                    continue
                if depth > _MAX_DEPTH or self.url is None:
                    raise SchemaError(
                        f"the reference {ref.name!r} cannot be resolved", code="invalid_schema"
                    )
                seen.add(key)
                path = f"/subjects/{_quote(ref.subject)}/versions/{ref.version}"
                serialized = kind == "PROTOBUF"
                reply = self._get(path + ("?format=serialized" if serialized else ""),
                                  missing=f"reference {ref.name!r}")  # fmt: skip
                found = _schema(reply, f"reference {ref.name!r}", serialized=serialized)
                visit(found.references, depth + 1)
                ordered.append((ref.name, found))

        visit(schema.references, 0)
        return ordered

    def _get(self, path: str, *, missing: str | None = None) -> Any:
        """The registry's JSON reply to ``GET path``; 404 is an unknown schema."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"{self.url}{path}", headers=self._headers)
        try:
            with _opener().open(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            if status == 404 and missing is None:
                raise UnknownSchemaError(_id_of(path)) from None
            if status == 404:
                raise SchemaError(f"the registry has no {missing}", code="invalid_schema") from None
            if status == 501 and "format=serialized" in path:
                raise SchemaError(
                    "the schema registry serves no Protobuf descriptors (format=serialized): "
                    "decode with into=YourMessageClass",
                    code="invalid_schema",
                ) from None
            code = "registry_unavailable" if status >= 500 or status == 429 else "registry_error"
            raise SchemaRegistryError(
                f"the schema registry answered {status} to GET {path.split('?')[0]}", code=code
            ) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout, TLS
            reason = getattr(exc, "reason", exc)
            raise SchemaRegistryError(
                f"the schema registry cannot be reached: {type(reason).__name__}"
            ) from None
        try:
            return json.loads(body)
        except ValueError:
            raise SchemaRegistryError(
                f"the schema registry's reply to GET {path.split('?')[0]} is not JSON",
                code="registry_error",
            ) from None


_OPENER: Any = None


def _opener() -> Any:
    """urllib's opener, but one that follows no redirect: urllib would send the
    ``Authorization`` header on to whatever host a redirect names. A registry does not
    redirect reads; a 3xx is answered as the error it then is."""
    global _OPENER
    if _OPENER is None:
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        _OPENER = urllib.request.build_opener(NoRedirect)
    return _OPENER


def _id_of(path: str) -> int:
    return int(path.split("?")[0].rsplit("/", 1)[1])


def _quote(subject: str) -> str:
    from urllib.parse import quote

    return quote(subject, safe="")


def _split_credentials(
    url: str, username: str | None, password: str | None
) -> tuple[str, str | None, str | None]:
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("a schema registry URL is http:// or https://, with a host")
    if parts.username is None:
        return url, username, password
    host = parts.netloc.rsplit("@", 1)[1]
    stripped = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return (
        stripped,
        username if username is not None else unquote(parts.username),
        password if password is not None else unquote(parts.password or ""),
    )


def _schema(reply: Any, what: str, *, serialized: bool = False) -> Schema:
    """The ``Schema`` in a registry reply (``/schemas/ids/..`` or ``/subjects/../versions/..``)."""
    try:
        kind = reply.get("schemaType") or "AVRO"  # the registry leaves out Avro's type
        text = reply["schema"]
        refs = tuple(
            Reference(str(r["name"]), str(r["subject"]), int(r["version"]))
            for r in reply.get("references") or ()
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise SchemaRegistryError(f"the registry's reply for {what} is not a schema",
                                  code="registry_error") from None  # fmt: skip
    if kind not in _TYPES or not isinstance(text, str):
        raise SchemaError(f"{what} has an unsupported type {kind!r}", code="invalid_schema")
    descriptor = None
    if serialized and kind == "PROTOBUF":
        import base64
        import binascii

        try:
            descriptor = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SchemaError(f"{what}'s descriptor is not base64", code="invalid_schema") from None
    return Schema(kind, text, refs, descriptor)


def _descriptor(schema: Schema, what: str) -> bytes:
    if schema.descriptor is None:
        raise SchemaError(
            f"{what} has no serialized descriptor: decode it with into=YourMessageClass",
            code="invalid_schema",
        )
    return schema.descriptor
