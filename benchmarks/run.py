"""Run every benchmark and print one table: ``python -m benchmarks.run`` (``./dev bench``).

Per-invocation cost is counted in instructions under callgrind where valgrind is
installed, and timed otherwise (``benchmarks.measure`` says how); cold start is timed
(``benchmarks.startup``); the idempotency benchmark runs when given a Redis URL. Each
row gives polyserve's cost, the baseline's, their ratio against the budget, and how it
was measured. The table is also written to ``.benchmarks/latest.md``. Reports only:
a case over its budget says FAIL in the table, and the exit status stays 0.

Before and after: the ``before`` column holds polyserve's cost and ratio for the same
case in an earlier table (``--before FILE``; by default the previous run's
``.benchmarks/latest.md``, read before this run replaces it), so that a change is
measured by running ``./dev bench`` once before it and once after. Below the table, a
summary line counts the budgets met and names the cases over budget.
"""

from __future__ import annotations

import argparse
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import measure, startup

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from benchmarks.measure import Cost

__all__ = ["COMPARISONS", "Comparison", "Row", "main", "table"]

_NO_MIDDLEWARE = "App has no middleware/dependency API yet (`app.middleware`, `Depends`)"

HAND = "by_hand"
POWERTOOLS = "powertools"
POLYSERVE = "polyserve"


@dataclass(frozen=True)
class Comparison:
    """polyserve's handler for a workload against a baseline's; ``budget``: the largest ratio."""

    case: str
    ours: tuple[str, str]
    baseline: tuple[str, str]
    budget: float | None


def _versus(baseline: str, label: str, budgets: dict[str, float | None]) -> list[Comparison]:
    cases = {
        "get-v1": "GET /pets/{id}, REST (v1)",
        "get-v2": "GET /pets/{id}, HTTP API (v2)",
        "post-valid": "POST pydantic body, valid",
        "post-invalid": "POST pydantic body, invalid (422)",
        "sqs": "SQS batch of 10, 2 failing",
    }
    return [
        Comparison(f"{what} vs {label}", (POLYSERVE, name), (baseline, name), budgets[name])
        for name, what in cases.items()
    ]


COMPARISONS = [
    *_versus(
        HAND,
        "hand-written",
        {"get-v1": 3.5, "get-v2": 3.5, "post-valid": 3.5, "post-invalid": 3.5, "sqs": 1.5},
    ),
    *_versus(
        POWERTOOLS,
        "Powertools",
        {"get-v1": 0.5, "get-v2": 0.5, "post-valid": 0.5, "post-invalid": 1.0, "sqs": None},
    ),
    Comparison(
        "route matching: last of 1,000 routes vs first",
        (POLYSERVE, "route-last"),
        (POLYSERVE, "route-first"),
        2.0,
    ),
    Comparison(
        "GET with one middleware and one dependency vs without (v2)",
        (POLYSERVE, "middleware"),
        (POLYSERVE, "get-v2"),
        1.15,
    ),
]


@dataclass(frozen=True)
class Row:
    """One line of the table, already worded."""

    case: str
    polyserve: str
    baseline: str
    ratio: str
    budget: str
    result: str
    method: str


def _amount(cost: Cost) -> str:
    if cost.unit == "instr":
        return f"{cost.value / 1000:,.1f}k instr"
    return f"{cost.value:,.1f} µs"


def _verdict(ratio: float, budget: float | None) -> tuple[str, str]:
    if budget is None:
        return "—", "reported"
    return f"≤ {budget:g}×", "PASS" if ratio <= budget else "FAIL"


def _skipped(comparison: Comparison, why: str) -> Row:
    budget = "—" if comparison.budget is None else f"≤ {comparison.budget:g}×"
    return Row(comparison.case, "—", "—", "—", budget, f"SKIPPED: {why}", "—")


def _missing(comparison: Comparison, available: set[str]) -> str | None:
    """Why ``comparison`` cannot run here, or None."""
    if POWERTOOLS in (comparison.ours[0], comparison.baseline[0]) and POWERTOOLS not in available:
        return "aws-lambda-powertools is not installed (`nox -s bench` installs it)"
    return None


def counted_rows(comparisons: Iterable[Comparison], invocations: int) -> list[Row]:
    """Every comparison in instructions per invocation, one callgrind process per side."""
    comparisons = list(comparisons)
    available = _sides()
    wanted: dict[str, list[str]] = {}
    for c in comparisons:
        if _missing(c, available) is None:
            for side, workload in (c.ours, c.baseline):
                if workload not in wanted.setdefault(side, []):
                    wanted[side].append(workload)
    # Counts do not depend on load, so the sides run side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            side: pool.submit(measure.count_instructions, side, workloads, invocations)
            for side, workloads in wanted.items()
        }
        costs = {
            (side, workload): cost
            for side, future in futures.items()
            for workload, cost in future.result().items()
        }
    method = f"callgrind: instructions per warm invocation (mean of {invocations})"
    rows = []
    for c in comparisons:
        why = _missing(c, available)
        ours, baseline = costs.get(c.ours), costs.get(c.baseline)
        if why is None and (ours is None or baseline is None):
            # A side measures every workload it has a handler for.
            why = _NO_MIDDLEWARE if c.ours[1] == "middleware" else "no handler for the workload"
        if why is not None or ours is None or baseline is None:
            rows.append(_skipped(c, why or "not measured"))
            continue
        ratio = ours.value / baseline.value
        budget, result = _verdict(ratio, c.budget)
        rows.append(
            Row(c.case, _amount(ours), _amount(baseline), f"{ratio:.2f}×", budget, result, method)
        )
    return rows


def timed_rows(comparisons: Iterable[Comparison]) -> list[Row]:
    """Every comparison timed in this process (without valgrind)."""
    available = _sides()
    rows = []
    method = "timed: median of 31 alternating rounds of 200 warm invocations"
    for c in comparisons:
        why = _missing(c, available)
        if why is None and c.ours[1] == "middleware" and not _has_middleware():
            why = _NO_MIDDLEWARE
        if why is not None:
            rows.append(_skipped(c, why))
            continue
        ours, baseline, ratio = measure.time_pair(c.ours, c.baseline)
        budget, result = _verdict(ratio, c.budget)
        rows.append(
            Row(c.case, _amount(ours), _amount(baseline), f"{ratio:.2f}×", budget, result, method)
        )
    return rows


def _sides() -> set[str]:
    sides = {POLYSERVE, HAND}
    if importlib.util.find_spec("aws_lambda_powertools") is not None:
        sides.add(POWERTOOLS)
    return sides


def _has_middleware() -> bool:
    from benchmarks.sides.polyserve import middleware_app

    return middleware_app() is not None


def startup_rows(counted: bool, runs: int) -> list[Row]:
    """Import, and import with the first request, over a bare interpreter."""
    startup.compile_bytecode()
    rows = []
    cases = [
        ("import polyserve + polyserve_aws", startup.IMPORT, 5.0),
        ("import + app (10 routes, no models) + first request", startup.FIRST_REQUEST, 25.0),
    ]
    for case, code, budget in cases:
        extra, bare = startup.overhead_ms(code, runs)
        rows.append(
            Row(
                case,
                f"{extra:+.1f} ms",
                f"bare interpreter: {bare:.1f} ms",
                "—",
                f"≤ +{budget:g} ms",
                "PASS" if extra <= budget else "FAIL",
                f"wall clock: median of {runs} alternating process pairs",
            )
        )
    if counted:
        bare_instr = measure.count_process_instructions(startup.BARE)
        for case, code, _ in cases:
            extra_instr = measure.count_process_instructions(code) - bare_instr
            rows.append(
                Row(
                    case,
                    f"{extra_instr / 1e6:+,.1f}M instr",
                    f"bare interpreter: {bare_instr / 1e6:,.1f}M instr",
                    "—",
                    "—",
                    "reported",
                    "callgrind: the whole process, to its first answer",
                )
            )
    return rows


def idempotency_rows(redis_url: str) -> list[Row]:
    """The idempotency benchmark (``benchmarks.bench_idempotency``) as rows."""
    from benchmarks import bench_idempotency

    report = bench_idempotency.run(redis_url)
    method = f"timed: median of {report['rounds']} alternating calls (Redis round trips)"
    rows = []
    for case in ("miss", "hit"):
        r = report[case]
        budget, result = _verdict(r["ratio"], bench_idempotency.BUDGET)
        rows.append(
            Row(
                f"idempotent POST on Redis, {case} vs hand-written",
                f"{r['polyserve_us']:,.1f} µs",
                f"{r['hand_us']:,.1f} µs",
                f"{r['ratio']:.2f}×",
                budget,
                result,
                method,
            )
        )
    return rows


_HEADER = "| case | polyserve | baseline | ratio | before | budget | result | method |"


def table(rows: Iterable[Row], before: dict[tuple[str, str], str] | None = None) -> str:
    """The rows as one markdown table; ``before`` (from ``earlier``) fills the before column."""
    lines = [_HEADER, "|---|---:|---:|---:|---:|---:|:---:|---|"]
    for r in rows:
        earlier = (before or {}).get((r.case, r.method.split(":")[0]), "—")
        cells = (r.case, r.polyserve, r.baseline, r.ratio, earlier, r.budget, r.result, r.method)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def earlier(text: str) -> dict[tuple[str, str], str]:
    """polyserve's cost and ratio per (case, how measured) in a table this module wrote.

    Reads tables with or without a before column; rows that were skipped are left out.
    """
    found: dict[tuple[str, str], str] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(line) <= set("|-: "):
            continue
        row = dict(zip(header, cells, strict=False))
        if row.get("polyserve", "—") == "—":
            continue
        ratio = row.get("ratio", "—")
        value = row["polyserve"] if ratio == "—" else f"{row['polyserve']} ({ratio})"
        found[(row["case"], row.get("method", "").split(":")[0])] = value
    return found


def summary(rows: Iterable[Row]) -> str:
    """One line: how many budgets were met, and which cases are over theirs."""
    rows = list(rows)
    judged = [r for r in rows if r.result in ("PASS", "FAIL")]
    over = [
        f"{r.case} ({r.ratio if r.ratio != '—' else r.polyserve})"
        for r in rows
        if r.result == "FAIL"
    ]
    line = f"Budgets met: {len(judged) - len(over)} of {len(judged)}."
    if over:
        line += " Over budget: " + "; ".join(over) + "."
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--timed", action="store_true", help="time invocations even where valgrind is installed"
    )
    parser.add_argument(
        "--invocations",
        type=int,
        default=measure.INVOCATIONS,
        help="invocations counted per workload under callgrind",
    )
    parser.add_argument("--startup-runs", type=int, default=41, help="process pairs per case")
    parser.add_argument("--redis-url", help="also run the idempotency benchmark on this Redis")
    parser.add_argument("--output", type=Path, default=Path(".benchmarks/latest.md"))
    parser.add_argument(
        "--before",
        type=Path,
        help="an earlier table for the before column (default: the previous run's --output)",
    )
    args = parser.parse_args(argv)
    before_file: Path = args.before or args.output
    before = earlier(before_file.read_text()) if before_file.is_file() else {}

    counted = measure.callgrind_available() and not args.timed
    steps: list[Callable[[], list[Row]]] = [
        (lambda: counted_rows(COMPARISONS, args.invocations))
        if counted
        else (lambda: timed_rows(COMPARISONS)),
        # Timed after the counts, so that no valgrind process competes with the clock.
        lambda: startup_rows(counted, args.startup_runs),
    ]
    if args.redis_url:
        steps.append(lambda: idempotency_rows(args.redis_url))
    rows = [row for step in steps for row in step()]
    text = table(rows, before) + "\n\n" + summary(rows)
    if before:
        text += f"\nbefore: {before_file}"
    if not counted:
        why = "--timed was given" if args.timed else "valgrind is not installed"
        text += f"\n\n{why}: per-invocation costs are timed, not counted."
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(f"\n(written to {args.output})")


if __name__ == "__main__":
    main()
