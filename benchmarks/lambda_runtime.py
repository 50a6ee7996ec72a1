"""What the AWS Lambda Python runtime sets up before it calls a handler, for the benchmarks.

Handlers are measured in the process state a Lambda function runs in, set up by the
runtime's own code (``awslambdaric``, the runtime interface client that the managed
Python runtimes run):

* **Logging.** ``awslambdaric.bootstrap`` gives the root logger one handler writing
  ``[LEVEL]\\t<time>\\t<request id>\\t<message>`` frames to the platform's log pipe, and
  sets a level only when the function's log level is configured
  (``AWS_LAMBDA_LOG_LEVEL``). By default the root logger stays at WARNING: a
  library's errors and warnings are formatted and written, its info lines are not.
  The benchmarks run that same set-up, writing the frames to ``/dev/null``.
* **Environment.** The variables the runtime sets, which the context object reads.
* **Context.** ``awslambdaric``'s own ``LambdaContext``, one per invocation.
"""

from __future__ import annotations

import os
import time
from typing import Any

from awslambdaric import bootstrap
from awslambdaric.lambda_context import LambdaContext

from benchmarks.events import REGION

__all__ = ["ENVIRONMENT", "configure_logging", "new_context"]

ENVIRONMENT = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
    "AWS_LAMBDA_FUNCTION_NAME": "pets-api",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/pets-api",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2025/03/14/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0",
}

_sink: Any = None


def configure_logging() -> None:
    """Set up logging as the Lambda runtime does by default (text format, no log level).

    Calls the runtime's own set-up with the format and level it reads from the
    environment (neither is set: text, and the root logger's WARNING), and its
    framed log sink on ``/dev/null`` where Lambda gives it the log pipe. Once per process.
    """
    global _sink
    if _sink is not None:
        return
    _sink = bootstrap.FramedTelemetryLogSink(os.open(os.devnull, os.O_WRONLY))
    _sink.__enter__()
    # The runtime's own function (private to it; the benchmarks pin its version through
    # the lock), so that the handlers log exactly as they would in Lambda.
    bootstrap._setup_logging(
        bootstrap._AWS_LAMBDA_LOG_FORMAT, bootstrap._AWS_LAMBDA_LOG_LEVEL, _sink
    )


def new_context(index: int) -> Any:
    """The context object the runtime passes with invocation ``index``.

    Its deadline is 15 minutes (Lambda's longest timeout) from now, far enough that
    no batch nears it even under valgrind.
    """
    return LambdaContext(
        f"5f0c2d3e-1a2b-4c3d-8e4f-{index:012d}",
        None,
        None,
        int((time.time() + 900) * 1000),
        f"arn:aws:lambda:{REGION}:123456789012:function:pets-api",
    )
