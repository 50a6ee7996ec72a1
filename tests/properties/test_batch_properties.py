"""For any mix of outcomes in a batch, every record is accounted for exactly once.

A record succeeds, fails (raises, raises ``Retry``, cannot be decoded, or is
never started) or is set aside (a poison message that ``on_poison`` took). The
reported failures must be exactly the records that failed (for ordered batches:
everything from the first failure on; for batches ordered by group, such as SQS
FIFO message groups, everything of the failed record's group from it on, and
nothing after a failure in its group ever succeeds); succeeded, failed and set aside must
together be the whole batch and never overlap: no record is both acknowledged
and failed. That holds whatever metadata is broken: a delivery count or id that
raises when read (as a malformed SQS record's does, read lazily), an id the batch
cannot read (reported by position), a group that cannot be read, or an
``on_poison`` hook that raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Literal

from adapters.aws.tests.support import FakeLambdaContext
from hypothesis import given
from hypothesis import strategies as st
from tests.support.unreadable import unreadable

import polyserve_aws
from polyserve import App, BatchResult, Context, Message, Trigger
from polyserve.retry import Retry
from polyserve_testkit.strategies import messages

MAX_ATTEMPTS = 5
KINDS = ("ok", "fail", "retry", "undecodable")
# What is broken about a record: nothing, its delivery count or id (they raise when
# read), or the id the batch reports it by (then it is reported by its position).
BROKEN = ("", "attempt", "id", "attempt+id", "item_id")
# How the batch keeps order: not at all, for the whole batch, or within each group.
MODES = ("unordered", "ordered", "grouped")
# Message groups; None stands for a group that cannot be read.
GROUPS = ("g1", "g2", "g3", None)


@dataclasses.dataclass(frozen=True)
class Spec:
    message: Message
    kind: str  # what the handler (or the decoder) does with it
    hook_fails: bool  # whether on_poison raises for it
    broken: str = ""
    group: str | None = "g1"

    @property
    def is_poison(self) -> bool:
        return (
            self.kind in ("fail", "retry")
            and self.message.attempt >= MAX_ATTEMPTS
            and "attempt" not in self.broken  # an unreadable count is never the last
        )

    def ident(self, index: int) -> str:
        return str(index) if self.broken == "item_id" else self.message.id


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Spec], str, int | None]:
    """Records with unique ids, how the batch keeps order (``MODES``), and the index
    before which the deadline falls (``None``: no deadline; ``0``: already passed)."""
    specs = draw(
        st.lists(
            st.builds(
                Spec, messages(), st.sampled_from(KINDS), st.booleans(), st.sampled_from(BROKEN),
                st.sampled_from(GROUPS),
            ),
            max_size=12,
            unique_by=lambda s: s.message.id,
        )
    )  # fmt: skip
    stop = draw(st.none() | st.integers(min_value=0, max_value=len(specs)))
    return specs, draw(st.sampled_from(MODES)), stop


class Harness:
    """An app wired so that each record does what its ``Spec`` says.

    The clock moves one second per record, and the deadline is placed so that the
    batch stops just before record ``stop``.
    """

    def __init__(self, specs: list[Spec], stop: int | None) -> None:
        # The record being handled: its handler and hook run right after its decoding,
        # and cannot look it up by an id that may be unreadable.
        self.current: Spec | None = None
        self.now = -1.0  # record i is checked against the deadline at time i
        margin = 0.5
        deadline = None if stop is None else stop + margin - 0.25
        self.app = App("props", batch_deadline_margin=margin)
        self.ctx = Context("test", deadline=deadline, clock=lambda: self.now)
        self.app.queue("orders", max_attempts=MAX_ATTEMPTS, on_poison=self.on_poison)(self.handle)

    def decode(self, spec: Spec) -> tuple[str, object]:
        self.current = spec
        if spec.kind == "undecodable":
            raise ValueError("not a message")
        fields = [f for f in ("attempt", "id") if f in spec.broken and spec.broken != "item_id"]
        return "orders", unreadable(spec.message, *fields) if fields else spec.message

    def handle(self, msg: Message) -> None:
        assert self.current is not None
        spec = self.current
        if spec.kind == "fail":
            raise RuntimeError(spec.message.id)
        if spec.kind == "retry":
            raise Retry(delay=float(len(spec.message.id)))

    def on_poison(self, event: Message, exc: BaseException, ctx: Context) -> None:
        assert self.current is not None
        if self.current.hook_fails:
            raise OSError("dead-letter queue unreachable")

    def item_id(self, spec: Spec) -> str:
        # Read once per record, started or not, just before the deadline check.
        self.now += 1.0
        if spec.broken == "item_id":
            raise KeyError("messageId")
        return spec.message.id

    @staticmethod
    def group_of(spec: Spec) -> str:
        if spec.group is None:
            raise KeyError("MessageGroupId")
        return spec.group

    def run(self, specs: list[Spec], mode: str) -> BatchResult:
        return self.app.handle_batch(
            Trigger.QUEUE, specs, self.ctx, decode=self.decode, item_id=self.item_id,
            ordered=mode != "unordered", group_of=self.group_of if mode == "grouped" else None,
        )  # fmt: skip

    def run_async(self, specs: list[Spec], mode: str) -> BatchResult:
        return asyncio.run(
            self.app.handle_batch_async(
                Trigger.QUEUE, specs, self.ctx, decode=self.decode, item_id=self.item_id,
                ordered=mode != "unordered",
                group_of=self.group_of if mode == "grouped" else None,
            )
        )  # fmt: skip


def expected(specs: list[Spec], mode: str, stop: int | None) -> dict[str, list[str]]:
    """The outcome the rules promise, worked out without running anything."""
    out: dict[str, list[str]] = {"succeeded": [], "failed": [], "set_aside": []}
    # The first record is always started, however late it is.
    start_limit = None if stop is None else max(stop, 1)
    broken = False  # the whole batch is stopped
    failed_groups: set[str | None] = set()  # grouped: the groups a failure stopped
    for index, spec in enumerate(specs):
        ident = spec.ident(index)
        if broken or (start_limit is not None and index >= start_limit):
            out["failed"].append(ident)
            continue
        # An unreadable group waits once any group has failed: it may be that one.
        if (
            mode == "grouped"
            and failed_groups
            and (spec.group is None or spec.group in failed_groups)
        ):
            out["failed"].append(ident)
            continue
        if spec.kind == "ok":
            out["succeeded"].append(ident)
        elif spec.is_poison and not spec.hook_fails:
            out["set_aside"].append(ident)
        else:
            out["failed"].append(ident)
            if mode == "grouped":
                failed_groups.add(spec.group)
                broken = spec.group is None
            else:
                broken = mode == "ordered"
    return out


def check(result: BatchResult, specs: list[Spec], mode: str, stop: int | None) -> None:
    ids = [s.ident(i) for i, s in enumerate(specs)]
    want = expected(specs, mode, stop)
    assert list(result.succeeded) == want["succeeded"]
    assert result.failed_ids == want["failed"]
    assert list(result.set_aside) == want["set_aside"]

    succeeded, failed = set(result.succeeded), set(result.failed_ids)
    set_aside = set(result.set_aside)
    assert succeeded | failed | set_aside == set(ids)
    assert len(result.succeeded) + len(result.failed) + len(result.set_aside) == len(ids)
    assert not succeeded & failed
    assert not succeeded & set_aside
    assert not failed & set_aside
    assert not set(result.acknowledged) & failed

    if mode == "ordered" and result.failed:
        first = ids.index(result.failed_ids[0])
        assert result.failed_ids == ids[first:]
    if mode == "grouped":
        # Within a group, nothing after a failed record is acknowledged.
        seen_failure: set[str | None] = set()
        for ident, spec in zip(ids, specs, strict=True):
            if ident in failed:
                seen_failure.add(spec.group)
            elif spec.group in seen_failure or (spec.group is None and seen_failure):
                raise AssertionError(f"{ident} acknowledged after a failure in its group")

    by_id = {s.ident(i): s for i, s in enumerate(specs)}
    for failure in result.failed:
        spec = by_id[failure.item_id]
        handed_back = isinstance(failure.error, Retry)
        assert handed_back == (failure.retry_delay is not None)
        if handed_back:
            assert spec.kind == "retry"
            assert failure.retry_delay == float(len(spec.message.id))


@given(batches())
def test_every_record_is_acknowledged_or_failed_never_both(
    batch: tuple[list[Spec], str, int | None],
) -> None:
    specs, mode, stop = batch
    check(Harness(specs, stop).run(specs, mode), specs, mode, stop)


@given(batches())
def test_the_async_path_reports_the_same_outcomes(
    batch: tuple[list[Spec], str, int | None],
) -> None:
    specs, mode, stop = batch
    sync_result = Harness(specs, stop).run(specs, mode)
    async_result = Harness(specs, stop).run_async(specs, mode)
    check(async_result, specs, mode, stop)
    assert async_result.succeeded == sync_result.succeeded
    assert async_result.set_aside == sync_result.set_aside
    assert [(f.item_id, f.reason, f.retry_delay) for f in async_result.failed] == [
        (f.item_id, f.reason, f.retry_delay) for f in sync_result.failed
    ]


_MISSING = object()  # no ApproximateReceiveCount at all
_COUNTS = st.one_of(
    st.integers(1, 9).map(str),  # what SQS sends
    st.sampled_from(["", "x", "2.5", "-1e3", None, [], {"n": 1}, 3]),  # what it must survive
    st.just(_MISSING),
)


@given(
    st.lists(
        st.tuples(messages(), st.sampled_from(["ok", "fail"]), _COUNTS, st.booleans()),
        min_size=1, max_size=8, unique_by=lambda t: t[0].id,
    )
)  # fmt: skip
def test_an_sqs_batch_reports_exactly_its_failures_whatever_the_receive_counts(
    rows: list[tuple[Message, str, object, bool]],
) -> None:
    outcome = {m.id: (kind, hook_fails) for m, kind, _, hook_fails in rows}
    app = App("props")

    def on_poison(event: Message, exc: BaseException, ctx: Context) -> None:
        if outcome[event.id][1]:
            raise OSError("dead-letter queue unreachable")

    @app.queue("orders", max_attempts=3, on_poison=on_poison)
    def handle(msg: Message) -> None:
        if outcome[msg.id][0] == "fail":
            raise RuntimeError(msg.id)

    records: list[dict[str, object]] = []
    expected_failed: list[str] = []
    for message, kind, count, hook_fails in rows:
        attributes: dict[str, object] = {"SentTimestamp": "1714557600000"}
        if count is not _MISSING:
            attributes["ApproximateReceiveCount"] = count
        records.append({
            "messageId": message.id, "receiptHandle": "h", "body": message.text,
            "attributes": attributes, "messageAttributes": {}, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
        })  # fmt: skip
        readable = count is _MISSING or (isinstance(count, (str, int)) and str(count).isdigit())
        attempt = 1 if count is _MISSING else int(str(count)) if readable else 0
        poison = readable and attempt >= 3 and not hook_fails
        # A count that cannot be read makes the record malformed: it fails alone,
        # whatever its handler would have done.
        if not readable or (kind == "fail" and not poison):
            expected_failed.append(message.id)

    out = polyserve_aws.handler(app)({"Records": records}, FakeLambdaContext("props"))
    assert out == {"batchItemFailures": [{"itemIdentifier": i} for i in expected_failed]}


@given(
    st.lists(
        st.tuples(messages(), st.sampled_from(["g1", "g2", "g3"]), st.booleans()),
        min_size=1, max_size=10, unique_by=lambda t: t[0].id,
    ),
    st.sampled_from(["group", "batch"]),
)  # fmt: skip
def test_an_sqs_fifo_batch_stops_only_the_failed_group(
    rows: list[tuple[Message, str, bool]], fifo_failure: Literal["group", "batch"]
) -> None:
    fails = {m.id for m, _, failing in rows if failing}
    handled: list[str] = []
    app = App("props")

    @app.queue("orders.fifo")
    def handle(msg: Message) -> None:
        if msg.id in fails:
            raise RuntimeError(msg.id)
        handled.append(msg.id)

    records = [
        {
            "messageId": m.id, "receiptHandle": "h", "body": m.text, "eventSource": "aws:sqs",
            "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": group},
            "messageAttributes": {},
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders.fifo",
        }
        for m, group, _ in rows
    ]  # fmt: skip
    handler = polyserve_aws.handler(app, fifo_failure=fifo_failure)
    out = handler({"Records": records}, FakeLambdaContext("props"))
    reported = [f["itemIdentifier"] for f in out["batchItemFailures"]]

    stopped: set[str] = set()
    want_failed, want_handled = [], []
    for m, group, failing in rows:
        key = group if fifo_failure == "group" else "batch"
        if key in stopped or failing:
            want_failed.append(m.id)
            stopped.add(key)
        else:
            want_handled.append(m.id)
    assert reported == want_failed
    assert handled == want_handled
    assert set(reported) | set(handled) == {m.id for m, _, _ in rows}
