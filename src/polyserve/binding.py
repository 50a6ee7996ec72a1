"""Turning a request or event into a handler's arguments, using its type hints.

This is the one module that imports pydantic, and only on first use: when a
handler declares a pydantic model, a dataclass or another type that needs
validation. A handler that takes only events, the context, path parameters and
plain query/header scalars never loads pydantic.

For an HTTP handler, each parameter is bound by the first rule that applies:

1. annotated ``HttpRequest`` -> the request; ``Context`` -> the context;
2. ``Annotated[T, Query()]`` / ``Header()`` / ``Body()`` -> that part of the request;
3. its name is a path parameter -> the converted path value;
4. ``bytes`` -> the raw body; a pydantic model, dataclass, TypedDict, ``dict`` or
   ``list[Model]`` -> the JSON body;
5. otherwise -> the query parameter of that name (``list[T]`` takes every value).

For any other handler: an event type (or no annotation) -> the event; ``Context``
-> the context; any other type -> the event's payload (message body, CloudEvent
data, schedule payload, new stream image), validated against it.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from polyserve._value import Value
from polyserve.context import Context
from polyserve.errors import (
    ConfigurationError,
    EventValidationError,
    FieldError,
    MalformedEventError,
    MissingDependencyError,
    UnsupportedEventError,
    UnsupportedMediaTypeError,
)
from polyserve.events._body import parse_json
from polyserve.events.http import HttpRequest

__all__ = ["Binder", "Body", "Header", "Query", "RequestOrEvent"]

_EMPTY = inspect.Parameter.empty
_BODY_LOC = ("body",)
# The non-HTTP event classes, by module. Each module is looked up in sys.modules
# rather than imported: an annotation naming an event class, or an event of one,
# means its module is loaded, and an HTTP-only function never loads the others
# (five dataclasses cost a cold start milliseconds).
_EVENT_CLASSES = (
    ("polyserve.events.queue", "Message"),
    ("polyserve.events.storage", "StorageEvent"),
    ("polyserve.events.schedule", "ScheduleEvent"),
    ("polyserve.events.stream", "StreamRecord"),
    ("polyserve.events.cloudevent", "CloudEvent"),
)


def _event_class(name: str) -> type | None:
    for module, cls in _EVENT_CLASSES:
        if cls == name:
            loaded = sys.modules.get(module)
            return None if loaded is None else getattr(loaded, cls)
    raise AssertionError(name)


def _loaded_event_types() -> tuple[type, ...]:
    return tuple(
        getattr(sys.modules[module], cls) for module, cls in _EVENT_CLASSES if module in sys.modules
    )


class _Aliased(Value):
    # A marker with an optional ``alias``: the name to bind from, if not the parameter's.
    __slots__ = ("alias",)
    _fields = ("alias",)
    alias: str | None

    def __init__(self, alias: str | None = None) -> None:
        object.__setattr__(self, "alias", alias)


class Query(_Aliased):
    """Marker: bind the parameter to a query parameter (``alias`` overrides its name)."""

    __slots__ = ()


class Header(_Aliased):
    """Marker: bind the parameter to a header (default name: the parameter with '-' for '_')."""

    __slots__ = ()


class Body(Value):
    """Marker: bind the parameter to the request body, decoded as JSON unless ``bytes``/``str``."""

    __slots__ = ()


class RequestOrEvent(Value):
    """Marker for wrappers that serve every trigger (``@idempotent``): bind the
    ``HttpRequest`` on an HTTP route, and the event on any other trigger.

    ``Annotated[object, RequestOrEvent()]``: on a route, a plain ``object`` parameter
    would be a query parameter, and an ``HttpRequest`` one would not take events.
    """

    __slots__ = ()


class _Source:
    # Where a parameter's value comes from (also the first part of an error's loc).
    REQUEST = "request"
    CONTEXT = "context"
    PATH = "path"
    QUERY = "query"
    HEADER = "header"
    BODY = "body"
    EVENT = "event"
    PAYLOAD = "payload"


class _Param:
    # One handler parameter and how to bind it (plain slots: built once per handler).
    __slots__ = (
        "alias",
        "annotation",
        "convert",
        "default",
        "is_list",
        "name",
        "source",
        "validator",
    )

    def __init__(
        self,
        name: str,
        source: str,
        alias: str,
        default: Any,
        annotation: Any,
        is_list: bool = False,
        convert: Callable[[str], Any] | None = None,
        validator: _Validator | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.alias = alias
        self.default = default
        self.annotation = annotation
        self.is_list = is_list
        self.convert = convert
        self.validator = validator


class Binder:
    """Builds the keyword arguments of one handler. Built once per handler, on first use."""

    __slots__ = (
        "_body_only",
        "_event_only",
        "_event_positional",
        "_params",
        "_path_only",
        "is_async",
        "takes_body_only",
        "takes_path_params_only",
    )

    def __init__(
        self, fn: Callable[..., Any], *, path_params: Sequence[str] = (), http: bool
    ) -> None:
        target = inspect.unwrap(fn)
        self.is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(fn)
        try:
            hints = typing.get_type_hints(target, include_extras=True)
        except Exception as exc:  # a NameError from a forward reference, typically
            raise ConfigurationError(f"cannot resolve the type hints of {fn!r}: {exc}") from exc
        params: list[_Param] = []
        positional: list[bool] = []
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            ann = hints.get(p.name, Any)
            params.append(_http_param(p, ann, path_params) if http else _event_param(p, ann))
            positional.append(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        bodies = [p for p in params if p.source == _Source.BODY]
        if len(bodies) > 1:
            raise ConfigurationError(
                f"{fn!r} declares more than one body: {[b.name for b in bodies]}"
            )
        self._params = tuple(params)
        # The commonest handler takes exactly its path parameters: no loop needed.
        self._path_only = (
            bool(params)
            and all(p.source == _Source.PATH and p.alias == p.name for p in params)
            and {p.name for p in params} == set(path_params)
        )
        # The commonest event handler takes exactly the event: (name, type), else None.
        only = params[0] if len(params) == 1 else None
        #: True when the handler takes exactly its path parameters, by name: callers may
        #: then pass the matched parameters straight through, with no binding.
        self.takes_path_params_only = self._path_only
        self._event_only: tuple[str, Any] | None = (
            (only.name, only.annotation)
            if only is not None and only.source == _Source.EVENT
            else None
        )
        # ... and can take it positionally: such a handler is its own event caller.
        self._event_positional = self._event_only is not None and positional[0]
        # The HTTP handler that takes exactly a body; positionally, it is called with
        # body_value rather than keyword arguments.
        self._body_only = only if only is not None and only.source == _Source.BODY else None
        self.takes_body_only = self._body_only is not None and positional[0]

    def http_kwargs(
        self, request: HttpRequest, ctx: Context, path_params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Arguments for an HTTP handler; ``path_params`` are the matched route's.

        Raises:
            EventValidationError: missing or invalid parameters or body (every failure listed).
            UnsupportedMediaTypeError: a body is declared and the content type is not JSON.
            MalformedEventError: the body is not valid JSON.
        """
        params = request.path_params if path_params is None else path_params
        if self._path_only:
            return dict(params)
        kwargs: dict[str, Any] = {}
        errors: list[FieldError] = []
        body_only = self._body_only
        if body_only is not None:  # the other common handler: it takes just a body
            return {body_only.name: self.body_value(request)}
        for p in self._params:
            src = p.source
            if src == _Source.REQUEST:
                # Copied only for handlers that take the request: most never pay for it.
                has_params = path_params is not None and path_params
                kwargs[p.name] = request.with_path_params(params) if has_params else request
            elif src == _Source.CONTEXT:
                kwargs[p.name] = ctx
            elif src == _Source.PATH:
                kwargs[p.name] = params[p.alias]
            elif src == _Source.BODY:
                self._bind_body(p, request, kwargs, errors)
            else:
                source = request.query if src == _Source.QUERY else request.headers
                _bind_scalar(p, source.get_all(p.alias), kwargs, errors)
        if errors:
            raise EventValidationError(errors)
        return kwargs

    def body_value(self, request: HttpRequest) -> Any:
        """The argument of a handler that takes just a body (``takes_body_only``).

        Raises:
            EventValidationError: the body is missing or does not validate.
            UnsupportedMediaTypeError: the content type is not JSON.
            MalformedEventError: the body is not valid JSON.
        """
        body_only = self._body_only
        assert body_only is not None
        body = request.body
        validator = body_only.validator
        if (
            validator is not None
            and body
            and request.headers.get("content-type") == "application/json"
            and not body.isspace()
        ):
            # A JSON body, said to be JSON: straight to the validator (from_json,
            # written out for a model).
            validate = validator._validate_json
            if validate is None or validator._plain is not None:
                return validator.from_json(body, _BODY_LOC)
            try:
                return validate(body)
            except validator._error as exc:
                raise _translate(exc, _BODY_LOC) from None
        kwargs: dict[str, Any] = {}
        errors: list[FieldError] = []
        self._bind_body(body_only, request, kwargs, errors)
        if errors:
            raise EventValidationError(errors)
        return kwargs[body_only.name]

    def _bind_body(
        self, p: _Param, request: HttpRequest, kwargs: dict[str, Any], errors: list[FieldError]
    ) -> None:
        if p.annotation is bytes:
            kwargs[p.name] = request.body
            return
        if p.annotation is str:
            kwargs[p.name] = request.text
            return
        body = request.body
        if not body or body.isspace():
            if p.default is _EMPTY:
                errors.append(FieldError(("body",), "a request body is required", "missing"))
            else:
                kwargs[p.name] = p.default
            return
        header = request.headers.get("content-type")
        if header is not None and header != "application/json":
            ctype = request.content_type
            if ctype and ctype != "application/json" and not ctype.endswith("+json"):
                raise UnsupportedMediaTypeError(f"expected a JSON body, got content type {ctype!r}")
        assert p.validator is not None
        kwargs[p.name] = p.validator.from_json(body, _BODY_LOC)

    def event_caller(
        self, fn: Callable[..., Any], event: object, ctx: Context
    ) -> Callable[[Any], Any]:
        """A function of one event that calls ``fn`` (this binder's handler) for it.

        Made once for a run of events of ``event``'s class: a handler that takes just
        the event, positionally, is returned as it is, so calling it costs nothing
        more; any other gets its arguments from ``event_kwargs`` on each call. An
        async handler is run to completion.
        """
        only = self._event_only
        call: Callable[[Any], Any]
        if (
            self._event_positional
            and only is not None
            and (only[1] is Any or isinstance(event, only[1]))
        ):
            call = fn
        else:

            def call(event: Any) -> Any:
                return fn(**self.event_kwargs(event, ctx))

        if not self.is_async:
            return call
        from polyserve._aio import run_sync

        inner = call
        return lambda event: run_sync(inner(event))

    def event_kwargs(self, event: object, ctx: Context) -> dict[str, Any]:
        """Arguments for a non-HTTP handler.

        Raises:
            UnsupportedEventError: the handler's declared event type is not what arrived.
            EventValidationError: the payload does not validate against the declared type.
        """
        only = self._event_only
        if only is not None and (only[1] is Any or event.__class__ is only[1]):
            return {only[0]: event}
        kwargs: dict[str, Any] = {}
        for p in self._params:
            if p.source == _Source.CONTEXT:
                kwargs[p.name] = ctx
            elif p.source == _Source.EVENT:
                if p.annotation is not Any and not isinstance(event, p.annotation):
                    raise UnsupportedEventError(
                        f"handler parameter {p.name!r} expects {_type_name(p.annotation)} "
                        f"but a {type(event).__name__} arrived",
                        description={"event_type": type(event).__name__},
                    )
                kwargs[p.name] = event
            else:
                assert p.validator is not None
                kwargs[p.name] = _payload(event, p.validator)
        return kwargs


def _http_param(p: inspect.Parameter, ann: Any, path_params: Sequence[str]) -> _Param:
    base, marker = _split_annotated(ann)
    if base is HttpRequest or isinstance(marker, RequestOrEvent):
        return _Param(p.name, _Source.REQUEST, p.name, p.default, HttpRequest)
    if base is Context:
        return _Param(p.name, _Source.CONTEXT, p.name, p.default, base)
    if isinstance(marker, Body) or (
        marker is None and p.name not in path_params and _is_body_type(base)
    ):
        validator = None if base in (bytes, str) else _Validator(base)
        return _Param(p.name, _Source.BODY, "body", p.default, base, validator=validator)
    if marker is None and p.name in path_params:
        return _Param(p.name, _Source.PATH, p.name, p.default, base)
    if isinstance(marker, Header):
        alias = marker.alias or p.name.replace("_", "-")
        return _scalar_param(p, base, _Source.HEADER, alias.lower())
    alias = marker.alias if isinstance(marker, Query) and marker.alias else p.name
    return _scalar_param(p, base, _Source.QUERY, alias)


def _event_param(p: inspect.Parameter, ann: Any) -> _Param:
    base, _ = _split_annotated(ann)
    if base is Context:
        return _Param(p.name, _Source.CONTEXT, p.name, p.default, base)
    if base is Any or base is object:
        return _Param(p.name, _Source.EVENT, p.name, p.default, Any)
    event_types = _event_types(base)
    if event_types:
        return _Param(p.name, _Source.EVENT, p.name, p.default, event_types)
    return _Param(p.name, _Source.PAYLOAD, p.name, p.default, base, validator=_Validator(base))


def _event_types(tp: Any) -> Any:
    event_types = _loaded_event_types()
    if isinstance(tp, type) and event_types and issubclass(tp, event_types):
        return tp
    if _is_union(tp):
        members = [a for a in get_args(tp) if a is not type(None)]
        if members and all(
            isinstance(a, type) and event_types and issubclass(a, event_types) for a in members
        ):
            return tuple(members)
    return None


def _payload(event: object, validator: _Validator) -> Any:
    loc: tuple[str, ...]
    message, cloudevent = _event_class("Message"), _event_class("CloudEvent")
    schedule, stream = _event_class("ScheduleEvent"), _event_class("StreamRecord")
    if message is not None and isinstance(event, message):
        return validator.from_json(event.body, ("body",))  # type: ignore[attr-defined]
    if cloudevent is not None and isinstance(event, cloudevent):
        loc = ("data",)
        data = event.data  # type: ignore[attr-defined]
        if isinstance(data, (bytes, bytearray, str)):
            return validator.from_json(
                bytes(data) if not isinstance(data, str) else data.encode(), loc
            )
        return validator.from_python(data, loc)
    if schedule is not None and isinstance(event, schedule):
        return validator.from_python(event.payload, ("payload",))  # type: ignore[attr-defined]
    if stream is not None and isinstance(event, stream):
        new = event.new  # type: ignore[attr-defined]
        return validator.from_python(new if new is not None else event.old, ("new",))  # type: ignore[attr-defined]
    raise UnsupportedEventError(
        f"a {type(event).__name__} carries no payload to validate",
        description={"event_type": type(event).__name__},
    )


def _scalar_param(p: inspect.Parameter, base: Any, source: str, alias: str) -> _Param:
    inner, optional = _strip_optional(base)
    default = None if (p.default is _EMPTY and optional) else p.default
    is_list = get_origin(inner) in (list, tuple, Sequence, set, frozenset)
    item = (get_args(inner) or (str,))[0] if is_list else inner
    convert = _scalar(item)
    return _Param(p.name, source, alias, default, base, is_list=is_list, convert=convert)


def _bind_scalar(
    p: _Param, values: list[str], kwargs: dict[str, Any], errors: list[FieldError]
) -> None:
    loc = (p.source, p.alias)
    if not values:
        if p.default is _EMPTY:
            errors.append(FieldError(loc, "field required", "missing"))
        else:
            kwargs[p.name] = p.default
        return
    assert p.convert is not None
    try:
        converted = [p.convert(v) for v in values] if p.is_list else p.convert(values[0])
    except (ValueError, TypeError) as exc:
        errors.append(FieldError(loc, str(exc) or "invalid value", "invalid"))
        return
    kwargs[p.name] = converted


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _to_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _to_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an integer") from None


def _to_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None


def _scalar(tp: Any) -> Callable[[str], Any]:
    if tp is str or tp is Any:
        return str
    if tp is bool:
        return _to_bool
    if tp is int:
        return _to_int
    if tp is float:
        return _to_float
    uuid = sys.modules.get("uuid")  # a UUID annotation means uuid is loaded
    if uuid is not None and tp is uuid.UUID:
        return uuid.UUID  # type: ignore[no-any-return]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if get_origin(tp) is Literal:
        allowed = {str(a): a for a in get_args(tp)}

        def literal(value: str) -> Any:
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {sorted(allowed)}")
            return allowed[value]

        return literal
    validator = _Validator(tp)
    return lambda value: validator.from_python(value, ())


# What the ``pydantic`` extra of ``polyserve-core`` pins: the versions validation supports.
_PYDANTIC_REQUIREMENT = "pydantic>=2.6,<3"
_PYDANTIC_EXTRA = "polyserve-core[pydantic]"
_PYDANTIC_RANGE = ((2, 6), (3, 0))


def _check_pydantic_version(version: str, *, feature: str = "validation") -> None:
    """Check that ``version`` (``pydantic.VERSION``) is one that validation supports.

    Raises:
        MissingDependencyError: the version is outside ``_PYDANTIC_REQUIREMENT`` (or
            unreadable); the message names the extra that installs a supported one.
    """
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        major = minor = -1
    low, high = _PYDANTIC_RANGE
    if not low <= (major, minor) < high:
        raise MissingDependencyError(
            "pydantic",
            feature=feature,
            extra=_PYDANTIC_EXTRA,
            requirement=_PYDANTIC_REQUIREMENT,
            found=version,
        )


class _Validator:
    """Validates JSON or Python values against a type with pydantic, loaded on first use.

    Plain ``dict``, ``list`` and ``Any`` need no validation beyond JSON parsing,
    so they never load pydantic. A pydantic model validates with its own methods;
    other types go through a ``TypeAdapter``.
    """

    __slots__ = ("_error", "_plain", "_tp", "_validate_json", "_validate_python")

    def __init__(self, tp: Any) -> None:
        self._tp = tp
        self._plain = _plain_container(tp)
        self._validate_json: Callable[[Any], Any] | None = None
        self._validate_python: Callable[[Any], Any] = _unloaded
        self._error: type[Exception] = Exception

    def _load(self) -> Callable[[Any], Any]:
        # The lazy import this module exists for. pydantic is an optional dependency of
        # the core, so its absence, or a version this code was not written for, is
        # reported here with what to install rather than as a bare ImportError.
        feature = f"validating {_type_name(self._tp)}"
        try:
            import pydantic
        except ImportError as exc:
            raise MissingDependencyError(
                "pydantic",
                feature=feature,
                extra=_PYDANTIC_EXTRA,
                requirement=_PYDANTIC_REQUIREMENT,
            ) from exc
        _check_pydantic_version(pydantic.VERSION, feature=feature)
        from pydantic import BaseModel, TypeAdapter, ValidationError

        self._error = ValidationError
        if isinstance(self._tp, type) and issubclass(self._tp, BaseModel):
            self._validate_python = self._tp.model_validate
            validate_json: Callable[[Any], Any] = self._tp.model_validate_json
            # The model's own core validator, called directly: model_validate_json only
            # wraps it (with no arguments, the call is the same). A model whose schema
            # is not built yet keeps going through model_validate_json.
            from pydantic_core import SchemaValidator

            core = self._tp.__dict__.get("__pydantic_validator__")
            if isinstance(core, SchemaValidator):
                validate_json = core.validate_json
        else:
            adapter = TypeAdapter(self._tp)
            self._validate_python = adapter.validate_python
            validate_json = adapter.validate_json
        self._validate_json = validate_json
        return validate_json

    def from_json(self, data: bytes | str, loc: tuple[str, ...]) -> Any:
        if self._plain is not None:
            return self.from_python(parse_json(data, ".".join(loc) or "payload"), loc)
        validate = self._validate_json or self._load()
        try:
            return validate(data)
        except self._error as exc:
            raise _translate(exc, loc) from None

    def from_python(self, data: Any, loc: tuple[str, ...]) -> Any:
        if self._plain is not None:
            if not isinstance(data, self._plain):
                kind = " or ".join(t.__name__ for t in self._plain)
                raise EventValidationError([FieldError(loc, f"expected {kind}", "type_error")])
            return data
        if self._validate_json is None:
            self._load()
        try:
            return self._validate_python(data)
        except self._error as exc:
            raise _translate(exc, loc) from None


def _unloaded(data: Any) -> Any:
    raise AssertionError("validator used before pydantic was loaded")


def _plain_container(tp: Any) -> tuple[type, ...] | None:
    if tp is Any or tp is object:
        return (object,)
    origin = get_origin(tp) or tp
    args = get_args(tp)
    if origin in (dict, Mapping) and (not args or args == (str, Any)):
        return (dict,)
    if origin in (list, Sequence) and (not args or args == (Any,)):
        return (list,)
    return None


def _translate(exc: Any, loc: tuple[str, ...]) -> Exception:
    fields: list[FieldError] = []
    for e in exc.errors(include_url=False, include_context=False, include_input=False):
        kind = e["type"]
        if kind == "json_invalid":
            return MalformedEventError(
                f"{'.'.join(loc) or 'payload'} is not valid JSON", code="invalid_json"
            )
        fields.append(FieldError((*loc, *e["loc"]), e["msg"], kind))
    return EventValidationError(fields)


def _split_annotated(ann: Any) -> tuple[Any, Any]:
    if get_origin(ann) is Annotated:
        base, *meta = get_args(ann)
        markers = (Query, Header, Body, RequestOrEvent)
        marker = next((m for m in meta if isinstance(m, markers)), None)
        return base, marker
    # Python 3.10's get_type_hints wraps the annotation of a parameter that defaults to
    # None in Optional, Annotated or not: Optional[Annotated[T, Header()]] is read as
    # Annotated[T, Header()], as later versions give it.
    if _is_union(ann):
        args = get_args(ann)
        if len(args) == 2 and type(None) in args:
            inner = args[0] if args[1] is type(None) else args[1]
            if get_origin(inner) is Annotated:
                return _split_annotated(inner)
    return ann, None


def _is_union(tp: Any) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if _is_union(tp):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            # Union[...] built at run time from a tuple of types has no `X | Y` spelling.
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return tp, False


def _is_body_type(tp: Any) -> bool:
    tp, _ = _strip_optional(tp)
    if tp is bytes:
        return True
    origin = get_origin(tp)
    if tp is dict or origin in (dict, Mapping):
        return True
    if origin in (list, Sequence):
        args = get_args(tp)
        return bool(args) and _is_model(args[0])
    return _is_model(tp)


def _is_model(tp: Any) -> bool:
    if not isinstance(tp, type):
        return False
    if dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
        return True
    # If pydantic was never imported, no class can be one of its models.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(tp, pydantic.BaseModel)


def _type_name(tp: Any) -> str:
    if isinstance(tp, tuple):
        return " or ".join(t.__name__ for t in tp)
    return getattr(tp, "__name__", str(tp))
