"""The exceptions polyserve raises, all under one base.

Every error carries a stable, machine-readable ``code`` that is safe to show to
clients, and the HTTP ``status`` it becomes when it ends an HTTP request::

    PolyserveError                       internal_error        500
    ├── ConfigurationError               configuration_error   500
    ├── MissingDependencyError           missing_dependency    500  (also ImportError)
    ├── EventError                       invalid_event         400
    │   ├── UnsupportedEventError        unsupported_event     400
    │   ├── MalformedEventError          malformed_event       400
    │   │   (codes: invalid_json, invalid_base64, invalid_path, ...)
    │   ├── PayloadTooLargeError         payload_too_large     413
    │   ├── UnsupportedMediaTypeError    unsupported_media_type 415
    │   ├── EventValidationError         validation_error      422
    │   └── SchemaError                  schema_error          400  (polyserve.schema_registry)
    │       │   (codes: invalid_wire_format, undecodable_payload, schema_mismatch, invalid_schema)
    │       └── UnknownSchemaError       unknown_schema        400
    ├── HttpError                        (any status and code, raised by handlers)
    ├── InvalidHeaderError               invalid_header        500  (a response header HTTP cannot carry)
    ├── MountedAppError                  mounted_app_error     500  (a mounted ASGI app misbehaved)
    │   └── StartupError                 startup_failed        500  (its lifespan startup failed)
    ├── IdempotencyError                 idempotency_error     500
    │   ├── InProgressError              in_progress           409
    │   ├── KeyMissingError              idempotency_key_missing 400
    │   ├── PayloadMismatchError         payload_mismatch      422
    │   ├── RecordTooLargeError          record_too_large      500
    │   ├── CorruptRecordError           corrupt_record        500
    │   └── StoreUnavailableError        store_unavailable     503
    ├── RetryExhaustedError              retry_exhausted       500
    ├── SchemaRegistryError              registry_unavailable  503  (the registry failed; retry)
    └── Retry (polyserve.retry)          retry_requested       503  (a hand-off, not a fault)

The idempotency and schema registry errors are defined in
``polyserve.idempotency.errors`` and ``polyserve.schema_registry.errors``, so that an
app that uses neither does not build them at cold start; this module gives them by
name all the same.

Third-party exceptions (pydantic, cloud SDKs) are translated at the boundary,
so callers only ever need to catch ``PolyserveError``.
"""

from __future__ import annotations

from polyserve._value import Value

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, ClassVar

    from polyserve.idempotency.errors import (
        CorruptRecordError,
        IdempotencyError,
        InProgressError,
        KeyMissingError,
        PayloadMismatchError,
        RecordTooLargeError,
        StoreUnavailableError,
    )
    from polyserve.schema_registry.errors import (
        SchemaError,
        SchemaRegistryError,
        UnknownSchemaError,
    )

__all__ = [
    "ConfigurationError",
    "CorruptRecordError",
    "EventError",
    "EventValidationError",
    "FieldError",
    "HttpError",
    "IdempotencyError",
    "InProgressError",
    "InvalidHeaderError",
    "KeyMissingError",
    "MalformedEventError",
    "MissingDependencyError",
    "MountedAppError",
    "PayloadMismatchError",
    "PayloadTooLargeError",
    "PolyserveError",
    "RecordTooLargeError",
    "RetryExhaustedError",
    "SchemaError",
    "SchemaRegistryError",
    "StartupError",
    "StoreUnavailableError",
    "UnknownSchemaError",
    "UnsupportedEventError",
    "UnsupportedMediaTypeError",
]


class PolyserveError(Exception):
    """Base of every polyserve error.

    ``code`` is stable and safe to show to clients; ``detail`` is a human
    sentence, also safe to show. ``status`` is the HTTP status the error becomes.
    """

    default_code: ClassVar[str] = "internal_error"
    default_status: ClassVar[int] = 500
    #: Whether an HTTP client may see ``code`` and ``detail`` even for a 5xx status.
    #: 4xx errors are always shown; other 5xx errors become a generic 500.
    is_exposed: ClassVar[bool] = False

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(detail or self.default_code)
        self.detail = detail or self.default_code.replace("_", " ")
        self.code = code or self.default_code
        self.status = self.default_status

    @property
    def headers(self) -> Mapping[str, str]:
        """HTTP headers to send with the error response (for example ``Retry-After``)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The client-safe fields of the error, as JSON-ready values."""
        return {"code": self.code, "detail": self.detail}


class ConfigurationError(PolyserveError):
    """The app, a decorator or an adapter was set up wrongly (found at set-up time)."""

    default_code = "configuration_error"


class MissingDependencyError(PolyserveError, ImportError):
    """An optional package a feature needs is not installed, or not in a supported version.

    The message names what to install: ``extra`` (an extra of ours that pins a
    supported version) when given, else ``requirement`` or the bare ``package``.
    ``found`` is the version installed when it is the wrong one.
    """

    default_code = "missing_dependency"

    def __init__(
        self,
        package: str,
        *,
        feature: str,
        extra: str | None = None,
        requirement: str | None = None,
        found: str | None = None,
    ) -> None:
        hint = f"pip install '{extra or requirement or package}'"
        wanted = f"'{requirement}'" if requirement else f"the '{package}' package"
        installed = f" (found {package} {found})" if found else ""
        super().__init__(f"{feature} needs {wanted}{installed}: {hint}")
        self.package = package


class EventError(PolyserveError):
    """An incoming event or request cannot be processed as it is (the client's fault)."""

    default_code = "invalid_event"
    default_status = 400


class UnsupportedEventError(EventError):
    """No adapter recognised the event, or no handler is registered for it."""

    default_code = "unsupported_event"

    def __init__(self, detail: str, *, description: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.description: Mapping[str, Any] = dict(description or {})


class MalformedEventError(EventError):
    """The event was recognised but is malformed: a missing field, bad JSON or base64."""

    default_code = "malformed_event"


class PayloadTooLargeError(EventError):
    """The request body is larger than the app accepts."""

    default_code = "payload_too_large"
    default_status = 413


class UnsupportedMediaTypeError(EventError):
    """The body's content type is not one the handler accepts."""

    default_code = "unsupported_media_type"
    default_status = 415


class FieldError(Value):
    """One validation failure: where (``loc``), what (``message``) and its kind (``type``).

    Immutable and hashable; equal when all three fields are equal.
    """

    __slots__ = ("loc", "message", "type")
    _fields = ("loc", "message", "type")

    loc: tuple[str | int, ...]
    message: str
    type: str

    def __init__(self, loc: tuple[str | int, ...], message: str, type: str) -> None:
        _set_loc(self, loc if loc.__class__ is tuple else tuple(loc))
        _set_message(self, message)
        _set_type(self, type)

    def to_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "message": self.message, "type": self.type}


# The slots' own setters, past the immutable __setattr__ (a validation failure makes
# one FieldError per field, so this is on the path of every 422).
_set_loc = FieldError.__dict__["loc"].__set__
_set_message = FieldError.__dict__["message"].__set__
_set_type = FieldError.__dict__["type"].__set__


class EventValidationError(EventError):
    """A payload, parameter or header failed validation against its declared type."""

    default_code = "validation_error"
    default_status = 422

    def __init__(self, errors: Sequence[FieldError], detail: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        if not detail:
            # Where, not what: each error's message is in ``errors`` (and in the 422
            # body), so the summary names the fields only.
            paths = []
            for e in self.errors:
                try:
                    path = ".".join(e.loc)  # type: ignore[arg-type]  # ints raise, below
                except TypeError:  # a list index in the path
                    path = ".".join([str(part) for part in e.loc])
                paths.append(path or "<root>")
            detail = f"validation failed for {', '.join(paths)}"
        super().__init__(detail)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["errors"] = [e.to_dict() for e in self.errors]
        return data


class HttpError(PolyserveError):
    """Raised by a handler to end an HTTP request with ``status`` and a JSON error body.

    Raises (on construction):
        ValueError: ``status`` is not 4xx or 5xx.
        InvalidHeaderError: a header in ``headers`` cannot be carried (a CR, LF or
            NUL in its value, a name that is not a token).
    """

    is_exposed = True

    def __init__(
        self,
        status: int,
        code: str | None = None,
        detail: str = "",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"HttpError status must be 4xx or 5xx, got {status}")
        super().__init__(detail, code=code or _default_code(status))
        self.status = status
        self._headers: Mapping[str, str] = dict(headers or {})
        if self._headers:
            # Checked here, in the handler that raises, as a response's headers are.
            from polyserve.events.http import check_header

            for name, value in self._headers.items():
                check_header(name, value)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers


class InvalidHeaderError(PolyserveError):
    """A response header that HTTP cannot carry: a name that is not a token, or a value
    with a control character (CR, LF, NUL and the others but tab), or not a string.

    Raised where the response is built, so the header never reaches a provider, where
    a line break would split the response. The message names the header, never its
    value (which may hold a secret); the client gets a generic 500.
    """

    default_code = "invalid_header"


class MountedAppError(PolyserveError):
    """A mounted ASGI app broke the protocol: it raised before answering, sent no
    response, sent two, sent a body before the start message, or an invalid status or
    header. The client gets a generic 500; the log names what went wrong.
    """

    default_code = "mounted_app_error"


class StartupError(MountedAppError):
    """A mounted ASGI app's lifespan startup failed; the next request tries it again."""

    default_code = "startup_failed"


class RetryExhaustedError(PolyserveError):
    """``@retry`` gave up: attempts ran out, or the deadline left no time for another."""

    default_code = "retry_exhausted"

    def __init__(self, detail: str, *, attempts: int, last_exception: BaseException | None) -> None:
        super().__init__(detail)
        self.attempts = attempts
        self.last_exception = last_exception


# The errors of optional features are defined with them (see their modules), so
# that an app using neither does not build them at cold start.
_ELSEWHERE = {
    "IdempotencyError": "polyserve.idempotency.errors",
    "InProgressError": "polyserve.idempotency.errors",
    "KeyMissingError": "polyserve.idempotency.errors",
    "PayloadMismatchError": "polyserve.idempotency.errors",
    "RecordTooLargeError": "polyserve.idempotency.errors",
    "CorruptRecordError": "polyserve.idempotency.errors",
    "StoreUnavailableError": "polyserve.idempotency.errors",
    "SchemaError": "polyserve.schema_registry.errors",
    "UnknownSchemaError": "polyserve.schema_registry.errors",
    "SchemaRegistryError": "polyserve.schema_registry.errors",
}


def __getattr__(name: str) -> Any:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def _default_code(status: int) -> str:
    return _CODES.get(status, "client_error" if status < 500 else "server_error")
