"""The OpenAPI 3.1 document of an app's HTTP routes (``App.openapi()``).

Built from what the app binds: path parameters with their converters' types, query
and header parameters and the body as each handler's binding plan reads them, the
response from the handler's return annotation, the error responses the pipeline
gives (``application/problem+json``), and the security schemes of the identity
helpers (``JwtVerifier``, ``ApiKeys``) a route depends on. Schemas of models,
dataclasses and TypedDicts come from pydantic, imported only here.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import TYPE_CHECKING, Any

from polyserve.binding import Binder, Source
from polyserve.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from polyserve.app import App
    from polyserve.routing import Route

__all__ = ["openapi_document"]

_EMPTY = inspect.Parameter.empty
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}")
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "format": "binary"},
}
_REF = "#/components/schemas/{model}"
_PROBLEM_MEDIA = "application/problem+json"
# The errors every route may answer with, as the pipeline gives them.
_ERRORS = {
    "400": "The request is malformed (for example a body that is not JSON).",
    "404": "No route matches the path.",
    "405": "The route does not take this method.",
    "413": "The request body is larger than the app accepts.",
    "415": "The request body's content type is not JSON.",
    "422": "A parameter or the body failed validation.",
    "500": "The handler failed; the body names only the invocation id.",
}


def _problem_schemas() -> dict[str, Any]:
    problem = {
        "type": "object",
        "description": "An RFC 9457 problem document with a stable, machine-readable code.",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "detail": {"type": "string"},
            "invocation_id": {"type": "string"},
        },
        "required": ["type", "title", "status", "code", "detail"],
    }
    field_error = {
        "type": "object",
        "properties": {
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": "Where: the source (path, query, header, body) then the field.",
            },
            "message": {"type": "string"},
            "type": {"type": "string"},
        },
        "required": ["loc", "message", "type"],
    }
    validation = {
        "allOf": [
            {"$ref": _REF.format(model="Problem")},
            {
                "type": "object",
                "properties": {
                    "errors": {"type": "array", "items": {"$ref": _REF.format(model="FieldError")}}
                },
                "required": ["errors"],
            },
        ]
    }
    return {"Problem": problem, "FieldError": field_error, "ValidationProblem": validation}


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, description in _ERRORS.items():
        model = "ValidationProblem" if status == "422" else "Problem"
        responses[f"Error{status}"] = {
            "description": description,
            "content": {_PROBLEM_MEDIA: {"schema": {"$ref": _REF.format(model=model)}}},
        }
    responses["Error401"] = {
        "description": "Credentials are missing or invalid.",
        "content": {_PROBLEM_MEDIA: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }
    return responses


class _Builder:
    """Collects operations, component schemas and security schemes for one document."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = _problem_schemas()
        self.security: dict[str, Any] = {}
        self._scheme_names: dict[int, str] = {}
        self._adapters: dict[tuple[Any, str], dict[str, Any]] = {}

    # -- schemas ----------------------------------------------------------------

    def schema(self, tp: Any, mode: str = "validation") -> dict[str, Any]:
        """The JSON Schema of ``tp``, its named parts moved to the components."""
        if tp is Any or tp is object or tp is inspect.Parameter.empty:
            return {}
        scalar = _SCALARS.get(tp)
        if scalar is not None:
            return dict(scalar)
        key = (tp, mode)
        cached = self._adapters.get(key)
        if cached is not None:
            return cached
        try:
            import pydantic
        except ImportError:
            raise MissingDependencyError(
                "pydantic", feature="OpenAPI schemas", extra="polyserve-core[pydantic]"
            ) from None
        try:
            adapter = pydantic.TypeAdapter(tp)
            schema = adapter.json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
        except (pydantic.PydanticUserError, pydantic.errors.PydanticSchemaGenerationError) as exc:
            raise ConfigurationError(f"no JSON Schema for {tp!r}: {exc}") from exc
        for name, definition in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, definition)
        if isinstance(tp, type) and schema.get("type") == "object":
            # A named class (model, dataclass, TypedDict) is a component of its own.
            name = tp.__name__
            if self.schemas.get(name, schema) != schema:
                name = f"{name}{'Input' if mode == 'validation' else 'Output'}"
            self.schemas.setdefault(name, schema)
            schema = {"$ref": _REF.format(model=name)}
        self._adapters[key] = schema
        return schema

    def scalar_schema(self, annotation: Any, is_list: bool) -> dict[str, Any]:
        inner = _strip_optional(annotation)
        if not is_list:
            return self.schema(inner)
        args = typing.get_args(inner)
        return {"type": "array", "items": self.schema(args[0] if args else str)}

    # -- security -----------------------------------------------------------------

    def scheme_for(self, provider: object) -> str | None:
        """The security scheme's name for an identity helper, or ``None`` for others."""
        from polyserve import auth

        if isinstance(provider, auth.JwtVerifier):
            if provider.header == "authorization" and provider.scheme.lower() == "bearer":
                scheme: dict[str, Any] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            else:
                scheme = {"type": "apiKey", "in": "header", "name": provider.header}
            base = "jwt"
        elif isinstance(provider, auth.ApiKeys):
            scheme = {"type": "apiKey", "in": "header", "name": provider.header}
            base = "apiKey"
        else:
            return None
        known = self._scheme_names.get(id(provider))
        if known is not None:
            return known
        name = base
        n = 1
        while name in self.security and self.security[name] != scheme:
            n += 1
            name = f"{base}{n}"
        self.security[name] = scheme
        self._scheme_names[id(provider)] = name
        return name


def _strip_optional(tp: Any) -> Any:
    args = typing.get_args(tp)
    if args and type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return tp


def _openapi_path(route: Route) -> tuple[str, dict[str, str]]:
    kinds: dict[str, str] = {}

    def plain(m: re.Match[str]) -> str:
        kinds[m.group(1)] = m.group(2) or "str"
        return "{" + m.group(1) + "}"

    return _PARAM.sub(plain, route.path), kinds


def _docstring(fn: Callable[..., Any]) -> tuple[str, str]:
    doc = inspect.getdoc(inspect.unwrap(fn)) or ""
    summary, _, rest = doc.strip().partition("\n")
    return summary.strip(), rest.strip()


def _tag(path: str) -> str | None:
    for part in path.split("/"):
        if part and "{" not in part:
            return part
    return None


class _Operation:
    """What one handler (and the providers it depends on) reads from a request."""

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.parameters: dict[tuple[str, str], dict[str, Any]] = {}
        self.body: dict[str, Any] | None = None
        self.security: list[str] = []
        self._seen: set[int] = set()

    def read(
        self, fn: Callable[..., Any], path_params: tuple[str, ...], kinds: dict[str, str]
    ) -> None:
        if id(fn) in self._seen:
            return
        self._seen.add(id(fn))
        scheme = self.builder.scheme_for(fn)
        if scheme is not None and scheme not in self.security:
            self.security.append(scheme)
        binder = Binder(fn, path_params=path_params, http=True)
        for p in binder.params:
            if p.source is Source.PATH:
                schema = dict(_CONVERTER_SCHEMAS[kinds.get(p.name, "str")])
                if kinds.get(p.name, "str") == "str" and _strip_optional(p.annotation) in _SCALARS:
                    schema = self.builder.schema(_strip_optional(p.annotation))
                self._add(p.name, "path", schema, required=True)
            elif p.source in (Source.QUERY, Source.HEADER):
                where = "query" if p.source is Source.QUERY else "header"
                schema = self.builder.scalar_schema(p.annotation, p.is_list)
                if p.default is not _EMPTY and p.default is not None and not p.is_list:
                    schema["default"] = p.default
                self._add(p.alias, where, schema, required=p.default is _EMPTY)
            elif p.source is Source.BODY:
                self.body = self._request_body(p.annotation, p.default is _EMPTY)
            elif p.source is Source.DEPENDENCY and p.depends is not None:
                provider = p.depends.provider
                if provider is None:
                    provider = p.annotation
                if callable(provider):
                    self.read(provider, path_params, kinds)

    def _add(self, name: str, where: str, schema: dict[str, Any], *, required: bool) -> None:
        param: dict[str, Any] = {"name": name, "in": where, "schema": schema}
        if required or where == "path":
            param["required"] = True
        self.parameters.setdefault((where, name), param)

    def _request_body(self, annotation: Any, required: bool) -> dict[str, Any]:
        if annotation is bytes:
            content = {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        elif annotation is str:
            content = {"text/plain": {"schema": {"type": "string"}}}
        else:
            content = {"application/json": {"schema": self.builder.schema(annotation)}}
        return {"required": required, "content": content}


def _response(builder: _Builder, route: Route) -> dict[str, Any]:
    from polyserve.events.http import HttpResponse

    try:
        hints = typing.get_type_hints(inspect.unwrap(route.endpoint), include_extras=False)
    except Exception:  # an unresolvable annotation: describe the response without a schema
        hints = {}
    returned = hints.get("return", Any)
    description = "Success." if route.status < 300 else "The handler's response."
    if returned is type(None) or route.status == 204:
        return {"description": description}
    if returned is HttpResponse:
        return {"description": description}
    if returned is str:
        return {
            "description": description,
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    if returned is bytes:
        schema = {"type": "string", "format": "binary"}
        return {
            "description": description,
            "content": {"application/octet-stream": {"schema": schema}},
        }
    try:
        schema = builder.schema(returned, mode="serialization")
    except ConfigurationError:  # a type pydantic cannot describe: any JSON
        schema = {}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(
    builder: _Builder, app: App, route: Route, method: str, kinds: dict[str, str]
) -> dict[str, Any]:
    op = _Operation(builder)
    for dep in (*app.dependency_stack(), *route.dependencies):
        if dep.provider is not None:
            op.read(dep.provider, route.param_names, kinds)
    op.read(route.endpoint, route.param_names, kinds)
    summary, description = _docstring(route.endpoint)
    operation: dict[str, Any] = {}
    tag = _tag(route.path)
    if tag:
        operation["tags"] = [tag]
    operation["summary"] = summary or route.name.replace("_", " ")
    if description:
        operation["description"] = description
    operation["operationId"] = (
        f"{route.name}_{method.lower()}" if len(route.methods) > 1 else route.name
    )
    if op.parameters:
        operation["parameters"] = list(op.parameters.values())
    if op.body is not None and method not in ("GET", "HEAD", "DELETE"):
        operation["requestBody"] = op.body
    responses: dict[str, Any] = {str(route.status): _response(builder, route)}
    statuses = ["400", "404", "405", "422", "500"]
    if op.body is not None:
        statuses[2:2] = ["413", "415"]
    if op.security:
        statuses.insert(0, "401")
        operation["security"] = [{name: []} for name in op.security]
    for status in sorted(statuses):
        responses.setdefault(status, {"$ref": f"#/components/responses/Error{status}"})
    operation["responses"] = responses
    return operation


def openapi_document(
    app: App,
    *,
    title: str | None = None,
    version: str = "0.1.0",
    description: str | None = None,
    servers: Iterable[str] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes, as a JSON-ready dict.

    Raises:
        MissingDependencyError: a route takes or returns a model and pydantic is not
            installed.
        ConfigurationError: a type has no JSON Schema, or a handler does not bind.
    """
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    names: dict[str, int] = {}
    from polyserve.docs import is_docs_route

    for route in app.routes:
        if is_docs_route(route.endpoint):
            continue
        path, kinds = _openapi_path(route)
        item = paths.setdefault(path, {})
        for method in sorted(route.methods):
            operation = _operation(builder, app, route, method, kinds)
            # operationIds are unique in a document.
            op_id = operation["operationId"]
            names[op_id] = names.get(op_id, 0) + 1
            if names[op_id] > 1:
                operation["operationId"] = f"{op_id}_{names[op_id]}"
            item[method.lower()] = operation
    info: dict[str, Any] = {"title": title or app.name, "version": version}
    if description:
        info["description"] = description
    document: dict[str, Any] = {"openapi": "3.1.0", "info": info}
    if servers:
        document["servers"] = [{"url": url} for url in servers]
    document["paths"] = paths
    components: dict[str, Any] = {"schemas": builder.schemas, "responses": _error_responses()}
    if builder.security:
        components["securitySchemes"] = builder.security
    document["components"] = components
    return document
