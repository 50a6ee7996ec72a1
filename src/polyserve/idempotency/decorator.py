"""``@idempotent``: run a handler once per key, and replay its result for repeats.

One call goes through these steps::

    key, fingerprint <- the event, request or arguments
    cache hit (COMPLETED only)            -> replay
    store.acquire(key)  -> owned          -> run the handler
                                             raised:   store.release, re-raise
                                             returned: store.complete, return the result
                        -> COMPLETED      -> replay (PayloadMismatchError if the payload differs)
                        -> IN_PROGRESS    -> InProgressError, or with wait=True poll store.get
                                             until it completes, frees up, or time runs out

Keys of HTTP calls are scoped to the caller (``scope=``): two callers who send the same
key, or the same body, get a record each, so a stored response is only ever replayed
to the caller it was made for.

The handler's binding is kept: the wrapper exposes the handler's own signature plus two
keyword-only parameters the app fills in (the Context, and the request or event), which
are removed again before the handler is called.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import threading
import time
import typing
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, cast

from polyserve.context import Context
from polyserve.errors import ConfigurationError
from polyserve.events import HttpRequest
from polyserve.idempotency import _keys
from polyserve.idempotency._serialize import canonical, decode_result, digest, encode_result
from polyserve.idempotency.errors import (
    CorruptRecordError,
    IdempotencyError,
    InProgressError,
    KeyMissingError,
    PayloadMismatchError,
    RecordTooLargeError,
    StoreUnavailableError,
)
from polyserve.idempotency.store import AsyncStore, Record, Status, Store, is_live
from polyserve.identity import Principal

__all__ = ["REPLAYED_HEADER", "idempotent"]

F = TypeVar("F", bound=Callable[..., Any])

REPLAYED_HEADER = "Idempotency-Replayed"
"""Set to ``true`` on an HTTP response that replays a stored one."""

_REPLAYED = (REPLAYED_HEADER.lower(), "true")

KeySpec = str | Callable[[Any], Any]
"""A dotted path into the payload (``"order.id"``), or a function of the event, request
or (for plain functions) the arguments mapping, returning the key."""

ScopeSpec = Literal["caller", "global"] | Callable[[Any, Any], "str | Principal | None"]
"""Whose records a call may see: ``"caller"`` (the default), ``"global"``, or a function
of the request, event or (for plain functions) arguments mapping, and the ``Context``
(``None`` when a plain function is called without one), returning the scope: a string,
a ``Principal``, or ``None`` for none."""

_CONTEXT_PARAM = "_idempotency_context"
_SOURCE_PARAM = "_idempotency_source"
_MAX_KEY_CHARS = 250
_FIRST_POLL = 0.01
_MAX_POLL = 0.25
# The shortest in-progress lock, in seconds. A lock lasts until the invocation's
# deadline, but a context whose deadline has passed (or nearly: a clock that runs
# ahead) would give a lock that is dead when written, and a concurrent caller would
# run the handler beside this one.
_MIN_LOCK_SECONDS = 5.0


def idempotent(
    store: Store | None = None,
    *,
    key: KeySpec | None = None,
    payload: KeySpec | None = None,
    ttl: float = 3600.0,
    mode: Literal["auto", "header"] = "auto",
    header: str = "Idempotency-Key",
    require_key: bool = True,
    wait: bool = False,
    cache_size: int = 0,
    on_missing_key: Literal["error", "skip"] = "error",
    clock: Callable[[], float] = time.time,
    lock_timeout: float = 60.0,
    scope: ScopeSpec = "caller",
) -> Callable[[F], F]:
    """Run the decorated function once per key; repeats get the stored result.

    Put it under the app's decorator (``@app.post(...)`` first, then ``@idempotent(...)``).
    It works on every trigger and on plain functions, sync or async.

    The key is, by default: a message's id; a CloudEvent's source and id; a storage
    event's bucket, object key, version (or etag) and action; a schedule's name and
    time; a stream record's source and sequence; for HTTP, the ``Idempotency-Key``
    header if sent, else a hash of method, path and body (or of the handler's arguments
    when it does not take the ``HttpRequest``); for plain functions, a hash of the
    arguments. Keys are namespaced by the function's ``module.qualname``.

    Keys of HTTP calls are also scoped to the caller, so that a stored response is
    replayed only to the caller it was made for: by ``Context.principal`` (its source
    and id) where the platform or a verifier identified one, else by a hash of the
    ``Authorization`` header. A request with neither is unscoped, and the function logs
    a warning the first time that happens. Events and plain functions have no caller:
    their keys stay global unless ``scope`` is a function.

    Args:
        store: where records live; ``None`` gives this function its own ``MemoryStore``.
        key: a dotted path into the payload, or a function of the event, request or
            (for plain functions) the mapping of argument names to values.
        payload: what the fingerprint covers (dotted path or function, like ``key``);
            default: the whole payload. A repeat with another fingerprint is refused.
        ttl: seconds a completed result is kept and replayed.
        mode: ``"header"`` takes the key only from the ``header`` of an HTTP request
            (IETF Idempotency-Key draft); ``"auto"`` derives it as above.
        header: the request header carrying the key.
        require_key: in header mode, refuse a request without the header (400);
            with ``False`` such a request runs unprotected.
        wait: when another call holds the key, poll for its result instead of raising
            ``InProgressError``, for at most the invocation's remaining time.
        cache_size: keep this many completed records in process memory (0: none).
        on_missing_key: ``"error"`` raises ``KeyMissingError`` when no key can be found;
            ``"skip"`` runs the function unprotected.
        clock: the time source for record timestamps (epoch seconds).
        lock_timeout: how long a call holds the key when the Context gives no deadline.
            With a deadline, the key is held until it, and for at least five seconds
            (or ``lock_timeout``, if shorter), even when the deadline has passed.
        scope: ``"caller"`` scopes HTTP keys as above; ``"global"`` shares keys between
            all callers, for keys that are global by design; a function of the request
            (or event, or arguments mapping) and the Context returns the scope itself:
            a string, a ``Principal``, or ``None`` for unscoped. A ``polyserve.auth``
            verifier is such a function: it authenticates the request before any
            replay, and scopes it to the caller it accepted.

    Raises (from the decorated function):
        KeyMissingError: no key (HTTP 400).
        InProgressError: another call holds the key (HTTP 409).
        PayloadMismatchError: the key was used with a different payload (HTTP 422).
        RecordTooLargeError: the result is larger than ``store.max_result_bytes``. The
            function has run; its lock is released so that a retry can run it again.
        CorruptRecordError: the stored record cannot be read (never a silent re-run).
        StoreUnavailableError: the store cannot be reached; the function does not run.
    """
    if mode not in ("auto", "header"):
        raise ConfigurationError(f"mode must be 'auto' or 'header', got {mode!r}")
    if on_missing_key not in ("error", "skip"):
        raise ConfigurationError(
            f"on_missing_key must be 'error' or 'skip', got {on_missing_key!r}"
        )
    if ttl <= 0 or lock_timeout <= 0:
        raise ConfigurationError("ttl and lock_timeout must be positive")
    if cache_size < 0:
        raise ConfigurationError("cache_size must not be negative")
    if not header:
        raise ConfigurationError("header must name a header")
    if not (scope in ("caller", "global") or (callable(scope) and not isinstance(scope, str))):
        raise ConfigurationError(f"scope must be 'caller', 'global' or a function, got {scope!r}")
    if mode == "header" and key is not None:
        raise ConfigurationError("mode='header' takes the key from the header; do not pass key=")
    for name, spec in (("key", key), ("payload", payload)):
        if spec is not None and not callable(spec) and not (isinstance(spec, str) and spec):
            raise ConfigurationError(f"{name} must be a dotted path or a callable")

    def decorate(fn: F) -> F:
        options = _Options(
            store=store, key=key, payload=payload, ttl=ttl, mode=mode, header=header,
            require_key=require_key, wait=wait, cache_size=cache_size,
            skip_missing=on_missing_key == "skip", clock=clock, lock_timeout=lock_timeout,
            scope=scope,
        )  # fmt: skip
        return cast("F", _Idempotent(fn, options).wrapper())

    return decorate


@dataclass(frozen=True, slots=True)
class _Options:
    store: Store | None
    key: KeySpec | None
    payload: KeySpec | None
    ttl: float
    mode: str
    header: str
    require_key: bool
    wait: bool
    cache_size: int
    skip_missing: bool
    clock: Callable[[], float]
    lock_timeout: float
    scope: ScopeSpec


@dataclass(slots=True)
class _Call:
    """One invocation's key and claim on it."""

    key: str
    fingerprint: str | None
    context: Context | None
    token: str
    lock_seconds: float
    wait_until: float | None = None  # time.monotonic() bound while waiting
    delay: float = _FIRST_POLL


@dataclass(slots=True)
class _Step:
    """What to do next: run the handler, return a replayed value, or sleep and poll."""

    run: bool = False
    replay: bool = False
    value: Any = None
    sleep: float = 0.0


_RUN = _Step(run=True)


class _Idempotent:
    """The state behind one decorated function."""

    def __init__(self, fn: Callable[..., Any], options: _Options) -> None:
        from polyserve.idempotency.memory import MemoryStore

        self.fn = fn
        self.options = options
        self.store: Store = options.store if options.store is not None else MemoryStore()
        self.namespace = (
            f"{getattr(fn, '__module__', None) or '?'}."
            f"{getattr(fn, '__qualname__', None) or getattr(fn, '__name__', repr(fn))}"
        )
        self.signature = inspect.signature(fn)
        for name in (_CONTEXT_PARAM, _SOURCE_PARAM):
            if name in self.signature.parameters:
                raise ConfigurationError(f"{self.namespace} may not declare a parameter {name!r}")
        self.cache = _Cache(options.cache_size) if options.cache_size else None
        # Whether the warning about an unscoped HTTP key was logged (once per function).
        self.warned_unscoped = False
        self.is_async = inspect.iscoroutinefunction(inspect.unwrap(fn)) or (
            inspect.iscoroutinefunction(fn)
        )
        # A store whose database is reached asynchronously (a Workers binding) has
        # *_async methods, which only an async function can await.
        self.async_store: AsyncStore | None = (
            cast("AsyncStore", self.store) if hasattr(self.store, "acquire_async") else None
        )
        if self.async_store is not None and not self.is_async:
            raise ConfigurationError(
                f"{self.namespace}: {type(self.store).__name__} is asynchronous; "
                "decorate an async def function"
            )

    # -- the wrapper ------------------------------------------------------------

    def wrapper(self) -> Callable[..., Any]:
        fn = self.fn
        if self.is_async:

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.call_async(args, kwargs)

            wrapper: Any = async_wrapper
        else:

            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.call(args, kwargs)

            wrapper = sync_wrapper
        functools.update_wrapper(wrapper, fn)
        # The binder reads parameters from __signature__ and type hints from the innermost
        # __wrapped__ function. The extra parameters exist only here, so the chain stops
        # here and __annotations__ carries the handler's own hints (still unevaluated,
        # resolved in the handler's module exactly as they would be without this wrapper).
        del wrapper.__wrapped__
        wrapper.__signature__ = self._wrapper_signature()
        wrapper.__annotations__ = self._wrapper_annotations()
        built: Callable[..., Any] = wrapper
        return built

    def _source_annotation(self) -> Any:
        if self.options.mode == "header":
            return HttpRequest
        # In auto mode the wrapper does not know whether it will serve HTTP or events:
        # the marker binds the request on a route and the event on any other trigger.
        # The request gives the key header and the caller's scope; an HTTP handler that
        # wants method, path and body hashing declares its own ``HttpRequest`` parameter,
        # which is found by type.
        from polyserve.params import RequestOrEvent

        return Annotated[object, RequestOrEvent()]

    def _wrapper_signature(self) -> inspect.Signature:
        params = list(self.signature.parameters.values())
        extra = [
            inspect.Parameter(_CONTEXT_PARAM, inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=Context),
            inspect.Parameter(_SOURCE_PARAM, inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=self._source_annotation()),
        ]  # fmt: skip
        # Keyword-only parameters go before **kwargs, if the handler has one.
        at = len(params)
        if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
            at -= 1
        return self.signature.replace(parameters=[*params[:at], *extra, *params[at:]])

    def _wrapper_annotations(self) -> dict[str, Any]:
        target = inspect.unwrap(self.fn)
        module = getattr(target, "__module__", None)
        own: Mapping[str, Any] = getattr(target, "__annotations__", None) or {}
        annotations = {
            name: typing.ForwardRef(value, module=module) if isinstance(value, str) else value
            for name, value in own.items()
        }
        annotations[_CONTEXT_PARAM] = Context
        annotations[_SOURCE_PARAM] = self._source_annotation()
        return annotations

    # -- calls ------------------------------------------------------------------

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = self._plan(args, kwargs)
        if call is None:
            return self.fn(*args, **kwargs)
        step = self._claim(call)
        while step.sleep:
            time.sleep(step.sleep)
            step = self._poll(call)
        if step.replay:
            return step.value
        try:
            result = self.fn(*args, **kwargs)
        except BaseException:
            self._release(call)
            raise
        self._complete(call, result)
        return result

    async def call_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.async_store is not None:
            return await self._call_awaiting_store(args, kwargs)
        call = self._plan(args, kwargs)
        if call is None:
            return await self.fn(*args, **kwargs)
        step = self._claim(call)
        while step.sleep:
            import asyncio  # loaded already: this runs inside an event loop

            await asyncio.sleep(step.sleep)
            step = self._poll(call)
        if step.replay:
            return step.value
        try:
            result = await self.fn(*args, **kwargs)
        except BaseException:
            self._release(call)
            raise
        self._complete(call, result)
        return result

    async def _call_awaiting_store(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # call_async's steps, awaiting an asynchronous store's *_async methods.
        import asyncio

        store = cast("AsyncStore", self.async_store)
        call = self._plan(args, kwargs)
        if call is None:
            return await self.fn(*args, **kwargs)
        step = await self._claim_async(store, call)
        while step.sleep:
            await asyncio.sleep(step.sleep)
            record = await store.get_async(call.key)
            polled = self._polled(call, record)
            step = await self._claim_async(store, call) if polled is None else polled
        if step.replay:
            return step.value
        try:
            result = await self.fn(*args, **kwargs)
        except BaseException:
            await self._release_async(store, call)
            raise
        try:
            data = self._result_data(result)
        except IdempotencyError:
            await self._release_async(store, call)
            raise
        expires_at = self.options.clock() + self.options.ttl
        stored = await store.complete_async(
            call.key, token=call.token, result=data, expires_at=expires_at
        )
        self._completed(call, data, expires_at, stored)
        return result

    # -- key and fingerprint ----------------------------------------------------

    def _plan(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call | None:
        """The call's key and fingerprint; ``None`` to run the function unprotected."""
        opts = self.options
        context = kwargs.pop(_CONTEXT_PARAM, None)
        source = kwargs.pop(_SOURCE_PARAM, None)
        # The request as it arrived (for the key header and the caller's scope), and the
        # request the key and fingerprint hash: in auto mode, only one the handler takes.
        wire = source if isinstance(source, HttpRequest) else None
        request = wire if opts.mode == "header" else None
        event = source if isinstance(source, _keys.EVENT_TYPES) else None
        header: str | None = None
        if context is None or (request is None and event is None):
            # Called directly, or an HTTP route in auto mode: the handler may declare the
            # request, event or context itself, so find them among its arguments by type.
            for value in (*args, *kwargs.values()):
                if isinstance(value, Context):
                    context = context or value
                elif isinstance(value, HttpRequest):
                    request = request or value
                elif isinstance(value, _keys.EVENT_TYPES):
                    event = event or value
        wire = wire or request
        if wire is not None:
            header = wire.headers.get(opts.header)
            if header is not None:
                header = _unquote(header)

        arguments: dict[str, Any] | None = None
        if request is None and event is None:
            arguments = self._arguments(args, kwargs)
        subject: Any = request if request is not None else event if event is not None else arguments
        # Before anything is looked up: a scope function may authenticate the caller.
        scope, is_unscoped_call = self._scope(wire, event, arguments, context)

        if opts.mode == "header":
            if request is None:
                raise ConfigurationError(
                    f"{self.namespace}: mode='header' works on HTTP routes only"
                )
            if not header:
                if opts.require_key:
                    raise KeyMissingError(f"the {opts.header} header is required")
                return None
        try:
            raw, derived = self._key(header, request, event, subject, arguments)
            if not raw:
                raise KeyMissingError(f"{self.namespace}: no idempotency key found")
            # A key that is the hash of the whole payload leaves nothing to fingerprint.
            fingerprint = derived or self._fingerprint(request, event, subject, arguments)
        except KeyMissingError:
            if not opts.skip_missing:
                raise
            _warn(context, "no idempotency key; running unprotected", function=self.namespace)
            return None
        if len(raw) > _MAX_KEY_CHARS:
            raw = "sha256:" + digest(raw.encode())
        if is_unscoped_call and not self.warned_unscoped:
            self.warned_unscoped = True
            _warn(
                context,
                "idempotency key not scoped to a caller: the request has no principal and "
                "no Authorization header, so callers sending the same key share one "
                "stored result; pass scope= to choose",
                function=self.namespace,
            )

        remaining = context.remaining_time() if context is not None else None
        if remaining is None:
            lock = opts.lock_timeout
        else:
            lock = max(remaining, min(_MIN_LOCK_SECONDS, opts.lock_timeout))
        return _Call(
            key=f"{self.namespace}@{scope}#{raw}" if scope else f"{self.namespace}#{raw}",
            fingerprint=fingerprint,
            context=context,
            token=_tokens.next(),
            lock_seconds=lock,
        )

    def _scope(
        self,
        wire: HttpRequest | None,
        event: object,
        arguments: dict[str, Any] | None,
        context: Context | None,
    ) -> tuple[str | None, bool]:
        """The hashed scope of the call's key (``None``: unscoped), and whether it is an
        HTTP call left unscoped by default, which is worth a warning.

        Raises whatever a scope function raises (``HttpError(401)`` from a verifier), and
        ConfigurationError when one returns something else than a str, Principal or None.
        """
        spec = self.options.scope
        if spec == "global":
            return None, False
        if callable(spec):
            subject = wire if wire is not None else event if event is not None else arguments
            found = spec(subject, context)
        elif wire is None:
            return None, False  # events and plain functions: no caller to scope by
        else:
            found = context.principal if context is not None else None
            if found is None:
                # Every value: a repeated header is one credential as a whole.
                credentials = "\n".join(wire.headers.get_all("authorization"))
                if not credentials:
                    return None, True
                return digest(b"authorization", _utf8(credentials)), False
        if found is None or found == "":
            return None, False
        if isinstance(found, Principal):
            return digest(b"principal", _utf8(found.source), _utf8(found.id)), False
        if isinstance(found, str):
            return digest(b"scope", _utf8(found)), False
        raise ConfigurationError(
            f"{self.namespace}: scope= returned {type(found).__name__}; "
            "expected a str, a Principal or None"
        )

    def _key(
        self,
        header: str | None,
        request: HttpRequest | None,
        event: object,
        subject: Any,
        arguments: dict[str, Any] | None,
    ) -> tuple[str | None, str | None]:
        """The raw key, and the same value again when it is the hash of the whole payload."""
        spec = self.options.key
        if self.options.mode == "header" or (spec is None and header):
            return header, None
        if spec is not None:
            return _keys.key_text(
                spec(subject) if callable(spec) else _keys.resolve_path(subject, spec)
            ), None
        if event is not None:
            return _keys.event_key(event), None
        hashed = _keys.request_digest(request) if request is not None else self._digest(arguments)
        return hashed, hashed

    def _fingerprint(
        self,
        request: HttpRequest | None,
        event: object,
        subject: Any,
        arguments: dict[str, Any] | None,
    ) -> str:
        spec = self.options.payload
        if spec is not None:
            return self._digest(
                spec(subject) if callable(spec) else _keys.resolve_path(subject, spec)
            )
        if request is not None:
            return _keys.request_digest(request)
        if event is not None:
            return digest(_keys.payload_bytes(event))
        return self._digest(arguments)

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return {k: v for k, v in bound.arguments.items() if not isinstance(v, Context)}

    def _digest(self, value: object) -> str:
        try:
            return digest(canonical(value))
        except TypeError as exc:
            raise KeyMissingError(
                f"{self.namespace}: cannot derive an idempotency key or fingerprint from "
                f"the arguments ({exc}); pass key= and payload="
            ) from None

    # -- the store --------------------------------------------------------------

    def _claim(self, call: _Call) -> _Step:
        now = self.options.clock()
        if self.cache is not None:
            cached = self.cache.get(call.key, now)
            if cached is not None:
                return self._judge(call, cached)
        found = self.store.acquire(
            call.key,
            token=call.token,
            fingerprint=call.fingerprint,
            lock_expires_at=now + call.lock_seconds,
            expires_at=now + self.options.ttl,
            now=now,
        )
        return self._claimed(call, found)

    async def _claim_async(self, store: AsyncStore, call: _Call) -> _Step:
        now = self.options.clock()
        if self.cache is not None:
            cached = self.cache.get(call.key, now)
            if cached is not None:
                return self._judge(call, cached)
        found = await store.acquire_async(
            call.key,
            token=call.token,
            fingerprint=call.fingerprint,
            lock_expires_at=now + call.lock_seconds,
            expires_at=now + self.options.ttl,
            now=now,
        )
        return self._claimed(call, found)

    def _claimed(self, call: _Call, found: Record | None) -> _Step:
        if found is None or (found.token == call.token and found.status is Status.IN_PROGRESS):
            # The second case is our own write, returned by an acquire its client retried.
            return _RUN
        return self._judge(call, found)

    def _judge(self, call: _Call, record: Record) -> _Step:
        if (
            call.fingerprint is not None
            and record.fingerprint is not None
            and record.fingerprint != call.fingerprint
        ):
            raise PayloadMismatchError(
                "this idempotency key was already used with a different payload"
            )
        if record.status is Status.COMPLETED:
            if record.result is None:
                raise CorruptRecordError(f"completed record {record.key!r} has no result")
            value = decode_result(record.result, add_header=_REPLAYED)
            if self.cache is not None:
                self.cache.put(record)
            return _Step(replay=True, value=value)
        if not self.options.wait:
            raise InProgressError("a request with this idempotency key is still being processed")
        now = time.monotonic()
        if call.wait_until is None:
            remaining = call.context.remaining_time() if call.context is not None else None
            budget = self.options.lock_timeout if remaining is None else remaining
            # Stop a little before the deadline, so the caller fails cleanly instead of
            # being stopped by the platform mid-wait.
            call.wait_until = now + budget - min(1.0, budget * 0.1)
        left = call.wait_until - now
        if left <= 0:
            raise InProgressError(
                "a request with this idempotency key is still being processed; gave up waiting"
            )
        delay = min(call.delay, left)
        call.delay = min(call.delay * 2, _MAX_POLL)
        return _Step(sleep=delay)

    def _poll(self, call: _Call) -> _Step:
        polled = self._polled(call, self.store.get(call.key))
        return self._claim(call) if polled is None else polled

    def _polled(self, call: _Call, record: Record | None) -> _Step | None:
        if record is None or not is_live(record, self.options.clock()):
            # The holder released the key or its lock expired: try to take it (None).
            return None
        return self._judge(call, record)

    def _release(self, call: _Call) -> None:
        try:
            self.store.release(call.key, token=call.token)
        except (StoreUnavailableError, CorruptRecordError) as exc:
            # The handler's own exception matters more; the lock expires by itself.
            _warn(call.context, "could not release an idempotency lock", error=str(exc))

    async def _release_async(self, store: AsyncStore, call: _Call) -> None:
        try:
            await store.release_async(call.key, token=call.token)
        except (StoreUnavailableError, CorruptRecordError) as exc:
            _warn(call.context, "could not release an idempotency lock", error=str(exc))

    def _result_data(self, result: Any) -> bytes:
        data = encode_result(result)
        limit = self.store.max_result_bytes
        if len(data) > limit:
            raise RecordTooLargeError(
                f"the result takes {len(data)} bytes; the store keeps at most {limit}"
            )
        return data

    def _complete(self, call: _Call, result: Any) -> None:
        try:
            data = self._result_data(result)
        except IdempotencyError:
            self._release(call)
            raise
        expires_at = self.options.clock() + self.options.ttl
        stored = self.store.complete(call.key, token=call.token, result=data, expires_at=expires_at)
        self._completed(call, data, expires_at, stored)

    def _completed(self, call: _Call, data: bytes, expires_at: float, stored: bool) -> None:
        if not stored:
            _warn(
                call.context,
                "idempotency lock expired before the handler finished; result not stored",
                key=call.key,
            )
            return
        if self.cache is not None:
            self.cache.put(
                Record(call.key, Status.COMPLETED, call.token, call.fingerprint,
                       expires_at, expires_at, data)
            )  # fmt: skip


class _Tokens:
    """Owner tokens: a random per-process prefix and a counter, cheaper than fresh randomness.

    A forked child draws a new prefix, so parent and child never hand out the same token.
    """

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(12).hex() + "-"
        self._counter = itertools.count()

    def next(self) -> str:
        return self._prefix + str(next(self._counter))


_tokens = _Tokens()


class _Cache:
    """A thread-safe LRU of COMPLETED records, dropped once expired."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> Record | None:
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return None
            if not is_live(record, now):
                del self._records[key]
                return None
            self._records.move_to_end(key)
            return record

    def put(self, record: Record) -> None:
        if record.status is not Status.COMPLETED:
            return
        with self._lock:
            self._records[record.key] = record
            self._records.move_to_end(record.key)
            while len(self._records) > self._size:
                self._records.popitem(last=False)


def _utf8(text: str) -> bytes:
    # Lone surrogates (escaped in a JSON event) are kept rather than refused.
    return text.encode("utf-8", "surrogatepass")


def _unquote(value: str) -> str:
    # The draft defines the header as a structured-field string ("..."); bare tokens
    # are common in practice and accepted as they are.
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _warn(context: Context | None, message: str, **fields: Any) -> None:
    if context is not None:
        context.logger.warning(message, **fields)
        return
    import logging

    logging.getLogger("polyserve").warning("%s %s", message, fields)
