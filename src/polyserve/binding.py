"""Turning a request or event into a handler's arguments, using its type hints.

A ``Binder`` reads a handler's (or dependency provider's) signature once and
says where each parameter comes from. For an HTTP handler, each parameter is
bound by the first rule that applies:

1. ``Depends(provider)`` (as default or in ``Annotated``) -> the provider's value;
2. annotated ``HttpRequest`` (or marked ``RequestOrEvent``) -> the request;
   ``Context`` -> the context;
3. ``Annotated[T, Query()]`` / ``Header()`` / ``Body()`` -> that part of the request;
4. its name is a path parameter -> the converted path value;
5. ``bytes`` -> the raw body; a pydantic model, dataclass, TypedDict, ``dict`` or
   ``list[Model]`` -> the JSON body;
6. otherwise -> the query parameter of that name (``list[T]`` takes every value).

For any other handler: ``Depends`` as above; an event type (or no annotation) ->
the event; ``Context`` -> the context; any other type -> the event's payload
(message body, CloudEvent data, schedule payload, new stream image), validated
against it.

Binding never imports pydantic: types that need validation get a
``polyserve.validation.Validator``, which loads it on first use.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import types
from collections.abc import Callable, Mapping, Sequence

from polyserve._hints import args as get_args
from polyserve._hints import form, is_typeddict, plain_hints
from polyserve._hints import origin as get_origin
from polyserve.context import Context
from polyserve.errors import (
    ConfigurationError,
    EventValidationError,
    FieldError,
    UnsupportedEventError,
    UnsupportedMediaTypeError,
)
from polyserve.events.http import HttpRequest
from polyserve.params import Body, Dependency, Header, Query, RequestOrEvent
from polyserve.pipeline import is_async_callable
from polyserve.validation import Validator

# Not ``typing.TYPE_CHECKING``: binding an app's handlers imports typing only for the
# annotations that need it (see polyserve._hints).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Binder", "Param", "Shape", "Source"]

_EMPTY = inspect.Parameter.empty
_BODY_LOC = ("body",)
# The non-HTTP event classes, by module. Each module is looked up in sys.modules
# rather than imported: an annotation naming an event class, or an event of one,
# means its module is loaded, and an HTTP-only function never loads the others.
_EVENT_CLASSES = (
    ("polyserve.events.queue", "Message"),
    ("polyserve.events.storage", "StorageEvent"),
    ("polyserve.events.schedule", "ScheduleEvent"),
    ("polyserve.events.stream", "StreamRecord"),
    ("polyserve.events.window", "StreamWindow"),
    ("polyserve.events.websocket", "WebSocketEvent"),
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


class Source(enum.Enum):
    """Where a parameter's value comes from (also the first part of an error's location)."""

    REQUEST = "request"
    CONTEXT = "context"
    PATH = "path"
    QUERY = "query"
    HEADER = "header"
    BODY = "body"
    EVENT = "event"
    PAYLOAD = "payload"
    DEPENDENCY = "dependency"


class Shape(enum.Enum):
    """The handler shapes that bind without a loop over parameters, and the rest."""

    NONE = "none"  # takes nothing
    PATH_ONLY = "path_only"  # exactly its path parameters, by name
    BODY_ONLY = "body_only"  # exactly one body parameter
    EVENT_ONLY = "event_only"  # exactly the event
    GENERAL = "general"


class Param:
    """One parameter of a handler or provider, and how it is bound."""

    __slots__ = (
        "alias",
        "annotation",
        "convert",
        "default",
        "depends",
        "is_list",
        "name",
        "source",
        "validator",
    )

    def __init__(
        self,
        name: str,
        source: Source,
        default: Any,
        annotation: Any,
        *,
        alias: str | None = None,
        is_list: bool = False,
        convert: Callable[[str], Any] | None = None,
        validator: Validator | None = None,
        depends: Dependency | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.alias = alias or name
        self.default = default
        self.annotation = annotation
        self.is_list = is_list
        self.convert = convert
        self.validator = validator
        self.depends = depends

    def __repr__(self) -> str:
        return f"Param({self.name!r}, {self.source.value})"


class Binder:
    """How to call one function: its parameters, and where each one's value comes from.

    Built once per handler or provider (and per route, for the path parameters it
    can see), on first use.

    Raises:
        ConfigurationError: the type hints cannot be resolved, the function declares
            two bodies, or a ``Depends`` has no provider.
    """

    __slots__ = (
        "bound",
        "dependencies",
        "fn",
        "is_async",
        "is_async_generator",
        "is_generator",
        "params",
        "shape",
        "uses_invocation",
    )

    def __init__(
        self, fn: Callable[..., Any], *, path_params: Sequence[str] = (), http: bool
    ) -> None:
        self.fn = fn
        target = inspect.unwrap(fn)
        self.is_generator = inspect.isgeneratorfunction(target)
        self.is_async_generator = inspect.isasyncgenfunction(target)
        self.is_async = not self.is_async_generator and is_async_callable(fn)
        # A class provider is bound by its constructor's parameters, a callable object
        # (a verifier, say) by its __call__'s.
        hinted: Any = target
        if isinstance(target, type):
            hinted = _defining(target, "__init__")
        elif not inspect.isroutine(target) and callable(target):
            hinted = _defining(type(target), "__call__")
        hints = _parameter_hints(fn, hinted)
        params: list[Param] = []
        positional: list[bool] = []
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            ann = hints[p.name] if p.name in hints else _any()
            param = _dependency_param(p, ann)
            if param is None:
                param = _http_param(p, ann, path_params) if http else _event_param(p, ann)
            params.append(param)
            positional.append(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        bodies = [p.name for p in params if p.source is Source.BODY]
        if len(bodies) > 1:
            raise ConfigurationError(f"{fn!r} declares more than one body: {bodies}")
        self.params = tuple(params)
        self.dependencies = tuple(p for p in params if p.source is Source.DEPENDENCY)
        #: The parameters bound from the request or event: every one but the dependencies.
        self.bound = tuple(p for p in params if p.source is not Source.DEPENDENCY)
        #: Whether binding needs the invocation's request or event at all: a function
        #: that takes only process-scoped dependencies can be called once per process.
        self.uses_invocation = any(
            p.source is not Source.DEPENDENCY or p.depends.scope == "invocation"  # type: ignore[union-attr]
            for p in params
        )
        self.shape = _shape(params, positional, path_params)

    # -- HTTP -----------------------------------------------------------------

    def http_arguments(
        self,
        request: HttpRequest,
        context: Context,
        path_params: Mapping[str, Any],
        errors: list[FieldError],
        kwargs: dict[str, Any],
    ) -> None:
        """Add the arguments that come from the request to ``kwargs``, every failure to ``errors``.

        Dependencies are not bound here (see ``polyserve.dependencies``).

        Raises:
            UnsupportedMediaTypeError: a body is declared and the content type is not JSON.
            MalformedEventError: the body is not valid JSON.
        """
        for p in self.bound:
            source = p.source
            if source is Source.PATH:
                kwargs[p.name] = path_params[p.alias]
            elif source is Source.QUERY:
                _bind_scalar(p, request.query.get_all(p.alias), kwargs, errors)
            elif source is Source.HEADER:
                _bind_scalar(p, request.headers.get_all(p.alias), kwargs, errors)
            elif source is Source.BODY:
                _bind_body(p, request, kwargs, errors)
            elif source is Source.CONTEXT:
                kwargs[p.name] = context
            elif source is Source.REQUEST:
                # A copy carrying the path parameters, for the handlers that take it.
                kwargs[p.name] = request.with_path_params(path_params) if path_params else request

    def body_argument(self, request: HttpRequest) -> Any:
        """The one argument of a ``Shape.BODY_ONLY`` handler.

        Raises:
            EventValidationError: the body is missing or does not validate.
            UnsupportedMediaTypeError: the content type is not JSON.
            MalformedEventError: the body is not valid JSON.
        """
        kwargs: dict[str, Any] = {}
        errors: list[FieldError] = []
        param = self.params[0]
        _bind_body(param, request, kwargs, errors)
        if errors:
            raise EventValidationError(errors)
        return kwargs[param.name]

    # -- events ---------------------------------------------------------------

    def event_arguments(self, event: object, context: Context) -> dict[str, Any]:
        """The arguments that come from the event (dependencies are bound elsewhere).

        Raises:
            UnsupportedEventError: the handler's declared event type is not what arrived.
            EventValidationError: the payload does not validate against the declared type.
        """
        kwargs: dict[str, Any] = {}
        for p in self.bound:
            if p.source is Source.EVENT:
                if p.annotation is not object and not isinstance(event, p.annotation):
                    carried = _carried_cloudevent(event, p.annotation)
                    if carried is not None:
                        kwargs[p.name] = carried
                        continue
                    raise UnsupportedEventError(
                        f"handler parameter {p.name!r} expects {_type_name(p.annotation)} "
                        f"but a {type(event).__name__} arrived",
                        description={"event_type": type(event).__name__},
                    )
                kwargs[p.name] = event
            elif p.source is Source.CONTEXT:
                kwargs[p.name] = context
            elif p.source is Source.PAYLOAD:
                assert p.validator is not None
                kwargs[p.name] = _payload(event, p.validator)
        return kwargs


def _defining(cls: type, name: str) -> Any:
    # The function ``name`` as the first class of ``cls``'s MRO that defines it.
    return next(vars(base)[name] for base in cls.__mro__ if name in vars(base))


def _parameter_hints(fn: Callable[..., Any], hinted: Any) -> dict[str, Any]:
    """The resolved type hints of ``hinted``'s parameters (its return type is not needed).

    A module that imports polyserve's types for type checking only (as polyserve's
    own ``auth`` does) still resolves them: polyserve's public types are looked up
    when the module's own names do not have them.

    Raises:
        ConfigurationError: a parameter's hint cannot be resolved.
    """
    annotations = dict(getattr(hinted, "__annotations__", None) or {})
    annotations.pop("return", None)
    plain = plain_hints(annotations)
    if plain is not None:
        return plain
    import typing

    holder = types.SimpleNamespace(__annotations__=annotations)
    module_names = getattr(hinted, "__globals__", None) or {}
    try:
        return typing.get_type_hints(holder, globalns=module_names, include_extras=True)
    except NameError:
        try:
            known = {**_KNOWN_TYPES, **module_names}
            return typing.get_type_hints(holder, globalns=known, include_extras=True)
        except Exception as exc:
            raise ConfigurationError(f"cannot resolve the type hints of {fn!r}: {exc}") from exc
    except Exception as exc:  # a forward reference to something else that is wrong
        raise ConfigurationError(f"cannot resolve the type hints of {fn!r}: {exc}") from exc


_KNOWN_TYPES: dict[str, Any] = {"Context": Context, "HttpRequest": HttpRequest}


def _any() -> Any:
    # The annotation of an unannotated parameter.
    from typing import Any

    return Any


def _shape(params: list[Param], positional: list[bool], path_params: Sequence[str]) -> Shape:
    if not params:
        return Shape.NONE
    if all(p.source is Source.PATH and p.alias == p.name for p in params) and {
        p.name for p in params
    } == set(path_params):
        return Shape.PATH_ONLY
    if len(params) == 1 and positional[0]:
        if params[0].source is Source.BODY:
            return Shape.BODY_ONLY
        if params[0].source is Source.EVENT:
            return Shape.EVENT_ONLY
    return Shape.GENERAL


def _split_annotated(ann: Any) -> tuple[Any, list[Any]]:
    if get_origin(ann) is form("Annotated"):
        base, *meta = get_args(ann)
        return base, meta
    # Python 3.10's get_type_hints wraps the annotation of a parameter that defaults to
    # None in Optional, Annotated or not: Optional[Annotated[T, Header()]] is read as
    # Annotated[T, Header()], as later versions give it.
    if _is_union(ann):
        args = get_args(ann)
        if len(args) == 2 and type(None) in args:
            inner = args[0] if args[1] is type(None) else args[1]
            if get_origin(inner) is form("Annotated"):
                return _split_annotated(inner)
    return ann, []


def _dependency_param(p: inspect.Parameter, ann: Any) -> Param | None:
    base, meta = _split_annotated(ann)
    depends = p.default if isinstance(p.default, Dependency) else None
    if depends is None:
        depends = next((m for m in meta if isinstance(m, Dependency)), None)
    if depends is None:
        return None
    if depends.provider is None:
        if not callable(base) or base is form("Any"):
            raise ConfigurationError(
                f"Depends() on parameter {p.name!r} needs a provider or a callable annotation"
            )
        depends = Dependency(base, scope=depends.scope, use_cache=depends.use_cache)
    return Param(p.name, Source.DEPENDENCY, _EMPTY, base, depends=depends)


def _http_param(p: inspect.Parameter, ann: Any, path_params: Sequence[str]) -> Param:
    base, meta = _split_annotated(ann)
    marker = next((m for m in meta if isinstance(m, (Query, Header, Body, RequestOrEvent))), None)
    bare, _ = _strip_optional(base)
    if bare is HttpRequest or isinstance(marker, RequestOrEvent):
        return Param(p.name, Source.REQUEST, p.default, HttpRequest)
    if bare is Context:
        return Param(p.name, Source.CONTEXT, p.default, Context)
    if isinstance(marker, Body) or (
        marker is None and p.name not in path_params and _is_body_type(base)
    ):
        validator = None if base in (bytes, str) else Validator(base)
        return Param(p.name, Source.BODY, p.default, base, alias="body", validator=validator)
    if marker is None and p.name in path_params:
        return Param(p.name, Source.PATH, p.default, base)
    if isinstance(marker, Header):
        alias = marker.alias or p.name.replace("_", "-")
        return _scalar_param(p, base, Source.HEADER, alias.lower())
    alias = marker.alias if isinstance(marker, Query) and marker.alias else p.name
    return _scalar_param(p, base, Source.QUERY, alias)


def _event_param(p: inspect.Parameter, ann: Any) -> Param:
    base, _ = _split_annotated(ann)
    if _strip_optional(base)[0] is Context:
        return Param(p.name, Source.CONTEXT, p.default, Context)
    if base is form("Any") or base is object:
        return Param(p.name, Source.EVENT, p.default, object)  # any event
    event_types = _event_types(base)
    if event_types is not None:
        return Param(p.name, Source.EVENT, p.default, event_types)
    return Param(p.name, Source.PAYLOAD, p.default, base, validator=Validator(base))


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


def _carried_cloudevent(event: object, annotation: Any) -> Any:
    # A queue or topic message that carries a CloudEvent (structured, or binary ``ce-``
    # attributes), for a handler that takes a CloudEvent; ``None`` otherwise.
    message, cloudevent = _event_class("Message"), _event_class("CloudEvent")
    if message is None or cloudevent is None or not isinstance(event, message):
        return None
    if annotation is not cloudevent and not (
        isinstance(annotation, tuple) and cloudevent in annotation
    ):
        return None
    from polyserve.outbound.cloudevents import from_message

    # ``event`` is a Message: the class was looked up at run time, so mypy cannot tell.
    return from_message(event)  # type: ignore[arg-type]


def _payload(event: object, validator: Validator) -> Any:
    message, cloudevent = _event_class("Message"), _event_class("CloudEvent")
    schedule, stream = _event_class("ScheduleEvent"), _event_class("StreamRecord")
    if message is not None and isinstance(event, message):
        return validator.from_json(event.body, ("body",))  # type: ignore[attr-defined]
    websocket = _event_class("WebSocketEvent")
    if websocket is not None and isinstance(event, websocket):
        return validator.from_json(event.body, ("body",))  # type: ignore[attr-defined]
    if cloudevent is not None and isinstance(event, cloudevent):
        data = event.data  # type: ignore[attr-defined]
        if isinstance(data, (bytes, bytearray, str)):
            encoded = data.encode() if isinstance(data, str) else bytes(data)
            return validator.from_json(encoded, ("data",))
        return validator.from_python(data, ("data",))
    if schedule is not None and isinstance(event, schedule):
        return validator.from_python(event.payload, ("payload",))  # type: ignore[attr-defined]
    if stream is not None and isinstance(event, stream):
        new = event.new  # type: ignore[attr-defined]
        return validator.from_python(new if new is not None else event.old, ("new",))  # type: ignore[attr-defined]
    raise UnsupportedEventError(
        f"a {type(event).__name__} carries no payload to validate",
        description={"event_type": type(event).__name__},
    )


def _bind_body(
    p: Param, request: HttpRequest, kwargs: dict[str, Any], errors: list[FieldError]
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
            errors.append(FieldError(_BODY_LOC, "a request body is required", "missing"))
        else:
            kwargs[p.name] = p.default
        return
    ctype = request.content_type
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaTypeError(f"expected a JSON body, got content type {ctype!r}")
    assert p.validator is not None
    try:
        kwargs[p.name] = p.validator.from_json(body, _BODY_LOC)
    except EventValidationError as exc:
        errors.extend(exc.errors)


def _scalar_param(p: inspect.Parameter, base: Any, source: Source, alias: str) -> Param:
    inner, optional = _strip_optional(base)
    default = None if (p.default is _EMPTY and optional) else p.default
    is_list = get_origin(inner) in (list, tuple, Sequence, set, frozenset)
    item = (get_args(inner) or (str,))[0] if is_list else inner
    return Param(p.name, source, default, base, alias=alias, is_list=is_list, convert=_scalar(item))


def _bind_scalar(
    p: Param, values: list[str], kwargs: dict[str, Any], errors: list[FieldError]
) -> None:
    loc = (p.source.value, p.alias)
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
    except EventValidationError as exc:
        errors.extend(FieldError((*loc, *e.loc), e.message, e.type) for e in exc.errors)
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
    if tp is str or tp is form("Any"):
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
    if get_origin(tp) is form("Literal"):
        allowed = {str(a): a for a in get_args(tp)}

        def literal(value: str) -> Any:
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {sorted(allowed)}")
            return allowed[value]

        return literal
    validator = Validator(tp)
    return lambda value: validator.from_python(value, ())


def _is_union(tp: Any) -> bool:
    return get_origin(tp) is form("Union") or isinstance(tp, types.UnionType)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if _is_union(tp):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) < len(get_args(tp)):
            if len(args) == 1:
                return args[0], True
            from typing import Union

            # Union[...] built at run time from a tuple of types has no `X | Y` spelling.
            return Union[tuple(args)], True  # noqa: UP007
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
    if dataclasses.is_dataclass(tp) or is_typeddict(tp):
        return True
    # If pydantic was never imported, no class can be one of its models.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(tp, pydantic.BaseModel)


def _type_name(tp: Any) -> str:
    if isinstance(tp, tuple):
        return " or ".join(t.__name__ for t in tp)
    return getattr(tp, "__name__", str(tp))
