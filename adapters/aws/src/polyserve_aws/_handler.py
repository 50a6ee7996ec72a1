"""The Lambda entry point: recognise the event, translate it, dispatch it, answer natively.

Event sources are tried in this fixed order; the first that recognises the event
handles it:

1. API Gateway REST (payload 1.0), HTTP API (payload 2.0) and Function URLs
2. Application Load Balancer
3. VPC Lattice (event structures v1 and v2)
4. Lambda@Edge (CloudFront viewer and origin requests and responses)
5. API Gateway WebSocket APIs (connect, message, disconnect)
6. SQS
7. SNS
8. S3 notifications
9. Kinesis and DynamoDB Streams tumbling windows
10. DynamoDB Streams
11. Kinesis Data Streams
12. EventBridge (S3 via EventBridge, scheduled rules and Scheduler, other events)
13. Kafka (Amazon MSK and self-managed Apache Kafka)

The checks do not overlap, so the order only puts the most frequent (HTTP) first.
Anything else goes to the app's ``@app.native()`` handler, as the Lambda event dict,
and its return value is the function's; without one it raises ``UnsupportedEventError``
describing what arrived.

A source's module is imported the first time an event gets that far down the list,
so a function that only ever answers HTTP never loads the others.
"""

from __future__ import annotations

from importlib import import_module

from polyserve.adapter import run, run_native
from polyserve.errors import ConfigurationError, UnsupportedEventError
from polyserve_aws import _tracing
from polyserve_aws._context import to_context
from polyserve_aws._identity import HEADER_SOURCES, Identity

# Not ``typing.TYPE_CHECKING``: importing typing costs cold-start milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any, Literal

    from polyserve.adapter import Batch, Source
    from polyserve.app import App
    from polyserve.batch import BatchResult
    from polyserve.context import Context
    from polyserve.identity import HeaderTrust
    from polyserve_aws._visibility import RetryDelays, VisibilityClient
    from polyserve_aws.types import LambdaContext

__all__ = ["SOURCES", "describe", "handler", "sources"]


SOURCES: tuple[str, ...] = (
    "_apigateway",
    "_alb",
    "_lattice",
    "_edge",
    "_websocket",
    "_sqs",
    "_sns",
    "_s3",
    "_window",
    "_dynamodb",
    "_kinesis",
    "_eventbridge",
    "_kafka",
)
"""The event source modules of ``polyserve_aws``, in the order they are tried."""

_loaded: list[Source] = []


def sources() -> Iterator[Source]:
    """The event sources in order, importing each the first time it is reached."""
    yield from _loaded
    for name in SOURCES[len(_loaded) :]:
        module: Source = import_module(f"polyserve_aws.{name}")
        _loaded.append(module)
        yield module


def _recognise(event: Any, last: Source | None = None) -> Source:
    """The source that recognises ``event``, or ``UnsupportedEventError`` describing it.

    ``last`` (the source of the previous event) is tried first: a function mostly
    gets one kind of event.
    """
    if isinstance(event, dict):
        if last is not None and last.matches(event):
            return last
        for source in sources():
            if source.matches(event):
                return source
    description = describe(event)
    raise UnsupportedEventError(
        f"polyserve-aws does not recognise this event: {description}",
        description=description,
    )


def describe(event: object) -> dict[str, Any]:
    """What arrived, for an ``UnsupportedEventError``: its type, keys and source fields.

    Text from the event is cut to 100 characters, so that whatever arrived (a key of
    a megabyte, say) the error stays small enough for Lambda to report.
    """
    if not isinstance(event, dict):
        return {"type": type(event).__name__}
    described: dict[str, Any] = {"keys": sorted(str(k)[:_SHOWN] for k in event)[:20]}
    for key in ("source", "detail-type", "eventSource", "type", "triggerSource"):
        value = event.get(key)
        if isinstance(value, str):
            described[key] = value[:_SHOWN]
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        record = records[0]
        value = record.get("eventSource", record.get("EventSource"))
        if isinstance(value, str):
            described["Records[0].eventSource"] = value[:_SHOWN]
    return described


_SHOWN = 100


class _SqsOptions:
    """The SQS source with the handler's options: FIFO failures stopping the whole
    batch, and ``Retry(delay=...)`` passed on as visibility changes."""

    is_http = False

    def __init__(self, retry_delays: RetryDelays | None, per_group: bool) -> None:
        from polyserve_aws import _sqs

        self._sqs = _sqs
        self._delays = retry_delays
        self._per_group = per_group

    def matches(self, raw: Any) -> bool:
        return self._sqs.matches(raw)

    def to_event(self, raw: Any, context: Context, names: Mapping[str, str]) -> Batch:
        return self._sqs.batch_of(raw, names, per_group=self._per_group)

    def to_native(self, outcome: BatchResult, raw: Any, context: Context) -> Any:
        response = self._sqs.to_native(outcome, raw, context)
        if self._delays is not None:
            # After the response is decided: nothing that happens here changes it.
            self._delays.apply(raw["Records"], outcome.failed, context)
        return response


def handler(
    app: App,
    *,
    names: Mapping[str, str] | None = None,
    sqs_client: VisibilityClient | None = None,
    honor_retry_delay: bool = False,
    identity_headers: Mapping[str, HeaderTrust] | None = None,
    fifo_failure: Literal["group", "batch"] = "group",
) -> Callable[[Any, LambdaContext], Any]:
    """A Lambda handler running ``app``: ``handler = polyserve_aws.handler(app)``.

    ``names`` maps native source ids to registration names: a queue, topic, stream,
    table, bucket, rule or schedule, by ARN or by name (``{"prod-orders-3F2A": "orders"}``).
    An unmapped source keeps its own name.

    ``honor_retry_delay=True`` passes ``Retry(delay=N)`` on to SQS: after each SQS
    batch, the records that failed with a delay get a visibility timeout of
    ``ceil(N)`` seconds (0 to 43200) through ``ChangeMessageVisibilityBatch``. The
    changes are best effort: one that fails is logged, and the response stays the
    same. ``sqs_client`` makes the calls (anything with
    ``change_message_visibility_batch``, such as a boto3 SQS client); by default a
    botocore client is created on first use.

    ``fifo_failure`` says what a failed record of a FIFO queue stops: ``"group"``
    (the default) its own message group, whose later records are reported with it
    while the other groups carry on; ``"batch"`` every later record of the batch.
    SQS orders a FIFO queue only within a message group, so ``"group"`` keeps every
    order SQS promises and redelivers less.

    ``Context.principal`` is the caller API Gateway or a Function URL authorized
    (Cognito, JWT, Lambda and IAM authorizers). ``identity_headers={"alb_oidc": True}``
    also reads an ALB's ``x-amzn-oidc-*`` headers, which is safe only when every
    listener rule that reaches the function authenticates; give a ``TokenVerifier``
    instead of ``True`` to take them only once it has checked ``x-amzn-oidc-data``.

    The returned function answers HTTP events with the service's response document,
    returns ``batchItemFailures`` for SQS, Kinesis and DynamoDB batches, and returns
    ``None`` for SNS, S3 and EventBridge events, whose failures raise so Lambda retries.

    Raises (from the returned function):
        UnsupportedEventError: no source recognises the event, or no handler is
            registered for an SNS, S3 or EventBridge event (a batch record without a
            handler fails alone).
        MalformedEventError: a recognised non-HTTP event cannot be read (HTTP events get
            a 400 response instead, batch records fail alone).
        Exception: whatever a handler raised for an SNS, S3 or EventBridge event.

    Raises:
        ConfigurationError: ``sqs_client`` is given without ``honor_retry_delay=True``,
            ``fifo_failure`` is neither ``"group"`` nor ``"batch"``, or
            ``identity_headers`` names an unknown source or holds a wrong value.
    """
    mapping: Mapping[str, str] = dict(names or {})
    trust: Mapping[str, HeaderTrust] = {}
    if identity_headers:
        from polyserve.identity import header_trust

        trust = header_trust(identity_headers, HEADER_SOURCES)
    identify = Identity(trust)
    if sqs_client is not None and not honor_retry_delay:
        raise ConfigurationError("sqs_client is used only with honor_retry_delay=True")
    if fifo_failure not in ("group", "batch"):
        raise ConfigurationError(f'fifo_failure must be "group" or "batch", got {fifo_failure!r}')
    sqs_options: _SqsOptions | None = None
    if honor_retry_delay or fifo_failure != "group":
        # Imported now rather than on the first SQS event, since a function that asks
        # for this takes SQS events; botocore still waits for the first delayed record.
        from polyserve_aws import _sqs

        delays = None
        if honor_retry_delay:
            from polyserve_aws._visibility import RetryDelays

            delays = RetryDelays(sqs_client)
        sqs_options = _SqsOptions(delays, per_group=fifo_failure == "group")
        sqs_module: Any = _sqs

    windows: Source | None = None
    last: Source | None = None

    def lambda_handler(event: Any, lambda_context: LambdaContext) -> Any:
        nonlocal last, windows
        try:
            source = last = _recognise(event, last)
        except UnsupportedEventError as exc:  # @app.native takes it, if there is one
            return run_native(app, "aws", event, to_context(lambda_context), exc)
        if sqs_options is not None and source is sqs_module:
            source = sqs_options
        elif getattr(source, "__name__", None) == "polyserve_aws._window":
            # Windows need the app: whether a registration takes windows or records.
            if windows is None:
                from polyserve_aws._window import Windows

                windows = Windows(app)
            source = windows
        context = to_context(lambda_context)
        context.principal_from(identify, event)
        context.trace_from(_tracing.trace_of, event)
        context.log_fields = _tracing.log_fields
        return run(app, source, event, context, mapping)

    lambda_handler.__name__ = lambda_handler.__qualname__ = f"handler[{app.name}]"
    return lambda_handler
