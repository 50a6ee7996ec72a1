"""A Lambda Runtime API server, and AWS's runtime interface client running a handler against it.

`LambdaRuntime` serves the Runtime API (version 2018-06-01) on a free loopback port and starts
``python -m awslambdaric <handler>`` with the environment the Lambda service gives a Python
function. ``invoke`` queues an event exactly as the service does: the runtime long-polls
``/runtime/invocation/next``, runs the handler and posts back to ``/response`` or ``/error``.

Endpoints served::

    GET  /2018-06-01/runtime/invocation/next            200, event body and Lambda-Runtime-* headers
    POST /2018-06-01/runtime/invocation/{id}/response   202, or 400 InvalidRequestID
    POST /2018-06-01/runtime/invocation/{id}/error      202, or 400 InvalidRequestID
    POST /2018-06-01/runtime/init/error                 202

Anything else is a 404. When the server shuts down, a waiting ``/next`` gets a 500, which the
service uses to tell a runtime to exit.
"""

from __future__ import annotations

import collections
import json
import os
import secrets
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["InitError", "InvocationResult", "LambdaRuntime", "LambdaRuntimeError"]

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ACCOUNT_ID = "123456789012"

# How often a waiting caller looks at the runtime process, so a crash is reported at once.
_POLL_INTERVAL = 0.02
_STOP_TIMEOUT = 5.0

# The environment variables the service sets for a function. Inherited copies are dropped so a
# developer's shell cannot change how the runtime behaves; AWS_LAMBDA_MAX_CONCURRENCY, for one,
# switches awslambdaric to its multi-concurrency mode.
_RESERVED_PREFIXES = ("AWS_LAMBDA_", "_LAMBDA_", "_AWS_")
_RESERVED_NAMES = frozenset(
    {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}
)


class LambdaRuntimeError(RuntimeError):
    """The runtime process exited, failed to start, or did not answer in time.

    The message ends with everything the process wrote to stdout and stderr, where awslambdaric
    logs handler and init errors.
    """


@dataclass(frozen=True)
class InvocationResult:
    """What the runtime posted for one invocation.

    ``payload`` is the parsed JSON body (the handler's return value, or awslambdaric's error
    document with ``errorType``/``errorMessage``/``stackTrace``); a body that is not JSON is kept
    as bytes. ``error_type`` is the ``Lambda-Runtime-Function-Error-Type`` header when the runtime
    sent one, otherwise the ``errorType`` of the error document; it is ``None`` when ``ok``.
    """

    request_id: str
    ok: bool
    payload: Any
    error_type: str | None


@dataclass(frozen=True)
class InitError:
    """What the runtime posted to ``/runtime/init/error`` before it exited."""

    error_type: str | None
    payload: Any


@dataclass
class _Invocation:
    request_id: str
    body: bytes
    headers: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    result: InvocationResult | None = None


class _RuntimeApi:
    """The service's side of the Runtime API: queued events and the answers posted for them."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: collections.deque[_Invocation] = collections.deque()
        self._in_flight: dict[str, _Invocation] = {}
        self._polls = 0
        self._closed = False
        self.init_error: InitError | None = None

    def enqueue(self, invocation: _Invocation) -> None:
        with self._changed:
            self._in_flight[invocation.request_id] = invocation
            self._queue.append(invocation)
            self._changed.notify_all()

    def withdraw(self, invocation: _Invocation) -> None:
        """Forget an invocation the caller stopped waiting for; a late answer gets a 400."""
        with self._changed:
            if invocation in self._queue:
                self._queue.remove(invocation)
            self._in_flight.pop(invocation.request_id, None)

    def next(self) -> _Invocation | None:
        """Block until an event is queued; ``None`` once the server is closing."""
        with self._changed:
            self._polls += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._queue or self._closed)
            return None if self._closed else self._queue.popleft()

    def complete(self, request_id: str, result: InvocationResult) -> bool:
        with self._changed:
            invocation = self._in_flight.pop(request_id, None)
        if invocation is None:
            return False
        invocation.result = result
        invocation.done.set()
        return True

    def fail_init(self, error: InitError) -> None:
        with self._changed:
            self.init_error = error
            self._changed.notify_all()

    def wait_started(self, timeout: float) -> bool:
        """Wait until the runtime has polled for work or reported an init error."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._polls > 0 or self.init_error is not None, timeout
            )

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: _RuntimeApi) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves its own name with getfqdn, which can stall for seconds
        # where reverse DNS is unreachable; a loopback server has no use for the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A runtime that is stopped while it waits on /next leaves a dead socket behind; that is
        # the normal end of a test, not a failure worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 lets the runtime's client keep one connection open across invocations.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the body then waits for
    # the client's delayed ACK, adding about 40 ms to every request.
    disable_nagle_algorithm = True

    @property
    def _api(self) -> _RuntimeApi:
        assert isinstance(self.server, _Server)
        return self.server.api

    def do_GET(self) -> None:
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply_error(404, "NotFound", f"no route for GET {self.path}")
            return
        invocation = self._api.next()
        if invocation is None:
            self._reply_error(500, "Runtime.ExitError", "the runtime API is shutting down")
            return
        self._reply(200, invocation.body, invocation.headers)

    def do_POST(self) -> None:
        body = self._read_body()
        parts = self.path.removeprefix(API_PREFIX).strip("/").split("/")
        error_type = self.headers.get(ERROR_TYPE_HEADER)
        if parts == ["init", "error"]:
            self._api.fail_init(InitError(error_type, _decode(body)))
            self._accepted()
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            result = _result(parts[1], parts[2] == "response", body, error_type)
            if self._api.complete(parts[1], result):
                self._accepted()
            else:
                self._reply_error(400, "InvalidRequestID", "Invalid request ID")
        else:
            self._reply_error(404, "NotFound", f"no route for POST {self.path}")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _accepted(self) -> None:
        self._reply(202, b'{"status":"OK"}', {})

    def _reply_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        self._reply(status, body, {})

    def _reply(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the per-request access log out of test output."""


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _result(request_id: str, ok: bool, body: bytes, error_type: str | None) -> InvocationResult:
    payload = _decode(body)
    if not ok and error_type is None and isinstance(payload, dict):
        # awslambdaric posts invocation errors without the header; the type is in the body.
        error_type = payload.get("errorType")
    return InvocationResult(request_id, ok, payload, None if ok else error_type)


def _trace_id() -> str:
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


class LambdaRuntime:
    """AWS's Python runtime interface client running ``handler`` against a local Runtime API.

    ``handler`` is ``"module.function"`` as in a function's configuration. ``task_root`` is the
    working directory and ``LAMBDA_TASK_ROOT`` (the handler module is imported from there);
    ``python_path`` entries go first on ``PYTHONPATH``; ``env`` is applied last and may replace
    any variable the runtime is given. Use as a context manager: entering starts the server and
    the process and waits up to ``start_timeout`` seconds for the runtime to ask for work;
    leaving terminates the process (killing it after a bounded wait) and stops the server. An
    instance runs once; make a new one to start again.

    Raises `LambdaRuntimeError` on entry if the process exits or reports an init error (see
    ``init_error``) or does not poll in time.
    """

    def __init__(
        self,
        handler: str,
        *,
        task_root: str | os.PathLike[str] | None = None,
        python_path: Iterable[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        function_name: str = "polyserve-test",
        region: str = "us-east-1",
        memory_mb: int = 128,
        start_timeout: float = 10.0,
    ) -> None:
        self.handler = handler
        self.task_root = os.fspath(task_root) if task_root is not None else os.getcwd()
        self.python_path = [os.fspath(path) for path in python_path]
        self.env = dict(env or {})
        self.function_name = function_name
        self.region = region
        self.memory_mb = memory_mb
        self.start_timeout = start_timeout
        self.function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self._api = _RuntimeApi()
        self._server: _Server | None = None
        self._server_thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._final_output = ""

    @property
    def address(self) -> str:
        """``host:port`` of the Runtime API, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        if self._server is None:
            raise LambdaRuntimeError("the runtime is not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def pid(self) -> int:
        """Process id of the runtime interface client."""
        if self._process is None:
            raise LambdaRuntimeError("the runtime is not started")
        return self._process.pid

    @property
    def init_error(self) -> InitError | None:
        """The error the runtime posted to ``/runtime/init/error``, if any."""
        return self._api.init_error

    @property
    def output(self) -> str:
        """Everything the runtime process has written to stdout and stderr so far."""
        if self._output is None or self._output.closed:
            return self._final_output
        self._output.flush()
        with open(self._output.name, "rb") as output:
            return output.read().decode(errors="replace")

    def environment(self) -> dict[str, str]:
        """The environment the runtime process is started with."""
        name = self.function_name
        day = time.strftime("%Y/%m/%d", time.gmtime())
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_RESERVED_PREFIXES) and key not in _RESERVED_NAMES
        }
        python_path = [*self.python_path, inherited.get("PYTHONPATH", "")]
        return {
            **inherited,
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": self.task_root,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{day}/[$LATEST]{secrets.token_hex(16)}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "PYTHONPATH": os.pathsep.join(path for path in python_path if path),
            "TZ": ":UTC",
            **self.env,
        }

    def __enter__(self) -> Self:
        self._server = _Server(self._api)
        self._server_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="lambda-runtime-api",
            daemon=True,
        )
        self._server_thread.start()
        try:
            self._output = tempfile.NamedTemporaryFile(prefix="lambda-runtime-", suffix=".log")
            self._process = subprocess.Popen(
                [sys.executable, "-m", "awslambdaric", self.handler],
                cwd=self.task_root,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
            )
            self._wait_started()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _wait_started(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not self._api.wait_started(_POLL_INTERVAL):
            self._check_alive()
            if time.monotonic() > deadline:
                raise self._error(f"did not poll for an invocation within {self.start_timeout}s")
        if self.init_error is not None:
            self._wait_exit(_STOP_TIMEOUT)
            raise self._error(f"reported an init error: {self.init_error.payload!r}")

    def invoke(
        self,
        event: object,
        timeout: float = 10.0,
        deadline_ms: int | None = None,
        *,
        client_context: Mapping[str, Any] | None = None,
        cognito_identity: Mapping[str, Any] | None = None,
    ) -> InvocationResult:
        """Queue ``event`` (encoded as JSON) for the runtime and wait for its answer.

        ``deadline_ms`` is the epoch time in milliseconds sent as ``Lambda-Runtime-Deadline-Ms``;
        it defaults to ``timeout`` seconds from now, as the service derives it from the function
        timeout. ``client_context`` and ``cognito_identity`` are sent as their JSON headers.

        Raises `LambdaRuntimeError` at once if the process has exited or exits while waiting,
        and after ``timeout`` seconds without an answer (the handler may still be running).
        """
        if self._process is None:
            raise LambdaRuntimeError("the runtime is not started; use it as a context manager")
        self._check_alive()
        request_id = str(uuid.uuid4())
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000 + timeout * 1000)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": _trace_id(),
        }
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(cognito_identity)
        invocation = _Invocation(request_id, json.dumps(event).encode(), headers)
        self._api.enqueue(invocation)
        give_up = time.monotonic() + timeout
        try:
            while not invocation.done.wait(_POLL_INTERVAL):
                self._check_alive()
                if time.monotonic() > give_up:
                    raise self._error(f"did not answer invocation {request_id} within {timeout}s")
        finally:
            self._api.withdraw(invocation)
        assert invocation.result is not None
        return invocation.result

    def close(self) -> None:
        """Stop the runtime process and the server; safe to call more than once."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            if not self._wait_exit(_STOP_TIMEOUT):
                self._process.kill()
                self._wait_exit(_STOP_TIMEOUT)
        self._api.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._server_thread is not None:
            self._server_thread.join(_STOP_TIMEOUT)
        if self._output is not None and not self._output.closed:
            self._final_output = self.output
            self._output.close()

    def _wait_exit(self, timeout: float) -> bool:
        assert self._process is not None
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise self._error(f"exited with status {code}")

    def _error(self, problem: str) -> LambdaRuntimeError:
        command = f"python -m awslambdaric {self.handler}"
        return LambdaRuntimeError(f"{command} {problem}; its output:\n{self.output}")
