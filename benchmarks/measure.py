"""Per-invocation cost of a handler in steady state: instructions under callgrind, or time.

**Instructions (callgrind).** Each implementation runs in its own process under
``valgrind --tool=callgrind`` with collection off (``--collect-atstart=no``). For each
workload the process sets up as the Lambda runtime does (``benchmarks.lambda_runtime``),
checks the handler's answer, warms it up with ``WARMUP`` invocations, prepares ``N``
(event, context) pairs (each event its own copy, as the runtime parses one per
invocation), then runs the ``N`` invocations inside ``sys.call_tracing(loop, ...)``.
``sys.call_tracing`` only calls its function (with no trace function set it changes
nothing), and is otherwise unused: callgrind switches collection on when the C function
behind it (``_PyEval_CallTracing``) is entered and off when it returns
(``--toggle-collect``), and writes the counts of each such region to a file of its own
(``--dump-after``). Cost per invocation is the region's instructions divided by ``N``:
imports, set-up, the warm-up and the building of events are never counted; the loop's
own few instructions are, alike for every implementation. The process's objects
are frozen out of the cycle collector's reach (``gc.freeze()``) before the region,
so that collections walk only what the invocations make, as in a warm function whose
start-up objects have long reached the oldest generation. With ``PYTHONHASHSEED=0``
the counts repeat from run to run, and move by less than 0.5% when ``N`` goes from
100 to 400.

**Every thread.** The collection toggle is per thread: it counts only the thread that
entered ``sys.call_tracing``. A handler that hands its work to a thread of its own (a
mounted ASGI app runs on a loop thread under a synchronous entry point) is measured
with ``every_thread=True``: collection stays on in every thread, and callgrind writes
its counts (of all threads, zeroing them) on entering the region (``--dump-before``)
and on leaving it (``--dump-after``), so each second file holds exactly the region's
instructions, whichever thread ran them. Both sides of a comparison are measured the
same way.

**Time (fallback, without valgrind).** Both handlers of a comparison run in this
process in alternating rounds (so that load on the machine slows both alike); the
result is the median over rounds of each round's mean, and the ratio the median of
the per-round ratios.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import lambda_runtime
from benchmarks.workloads import WORKLOADS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.workloads import Handler

__all__ = [
    "INVOCATIONS",
    "WARMUP",
    "Cost",
    "callgrind_available",
    "count_instructions",
    "count_process_instructions",
    "time_pair",
]

INVOCATIONS = 200
WARMUP = 50
_TOGGLE = "_PyEval_CallTracing"
_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Cost:
    """What one invocation costs: instructions (``unit="instr"``) or microseconds."""

    value: float
    unit: str


def callgrind_available() -> bool:
    return shutil.which("valgrind") is not None


def environment() -> dict[str, str]:
    """This process's environment with the Lambda runtime's variables and a fixed hash seed."""
    return {**os.environ, **lambda_runtime.ENVIRONMENT, "PYTHONHASHSEED": "0"}


def _copies(event: dict[str, Any], count: int) -> list[tuple[dict[str, Any], Any]]:
    # Each invocation gets its own event, parsed from JSON as the runtime does, and its
    # own context.
    text = json.dumps(event)
    return [(json.loads(text), lambda_runtime.new_context(i)) for i in range(count)]


def _loop(handler: Handler, calls: list[tuple[dict[str, Any], Any]]) -> None:
    for event, context in calls:
        handler(event, context)


def _prepare(side: str, workloads: Sequence[str]) -> dict[str, Handler]:
    """The side's handlers for ``workloads``, each checked against its workload's answer."""
    lambda_runtime.configure_logging()
    module = importlib.import_module(f"benchmarks.sides.{side}")
    handlers: dict[str, Handler] = module.handlers()
    for name in workloads:
        handler = handlers.get(name)
        if handler is None:
            continue
        workload = WORKLOADS[name]
        [(event, context)] = _copies(workload.event, 1)
        problem = workload.check(handler(event, context))
        if problem is not None:
            raise SystemExit(f"{side} answers {name} wrongly: {problem}")
    return handlers


def _child(side: str, workloads: Sequence[str], invocations: int) -> None:
    """Run in the process under callgrind: one collected region per workload it has."""
    handlers = _prepare(side, workloads)
    measured = []
    for name in workloads:
        handler = handlers.get(name)
        if handler is None:
            continue
        event = WORKLOADS[name].event
        _loop(handler, _copies(event, WARMUP))
        calls = _copies(event, invocations)
        gc.collect()
        gc.freeze()
        sys.call_tracing(_loop, (handler, calls))
        gc.unfreeze()
        del calls
        measured.append(name)
    print(json.dumps({"measured": measured}))


def _totals(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def count_instructions(
    side: str,
    workloads: Sequence[str],
    invocations: int = INVOCATIONS,
    *,
    every_thread: bool = False,
) -> dict[str, Cost]:
    """Instructions per invocation of ``side``'s handler for each of ``workloads`` it has.

    ``every_thread`` counts the instructions of every thread during the region, not
    only those of the thread that runs the loop (see the module docstring).

    Raises:
        RuntimeError: the process failed, or callgrind did not write one count per workload.
    """
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        if every_thread:
            collect = [f"--dump-before={_TOGGLE}", f"--dump-after={_TOGGLE}"]
        else:
            collect = [
                "--collect-atstart=no",
                f"--toggle-collect={_TOGGLE}",
                f"--dump-after={_TOGGLE}",
            ]
        command = [
            "valgrind", "--tool=callgrind", *collect,
            f"--callgrind-out-file={out}", "--log-file=/dev/null",
            sys.executable, "-m", "benchmarks.measure", side, str(invocations), *workloads,
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=_ROOT, env=environment(), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{side}: {done.stderr.strip() or done.stdout.strip()}")
        measured: list[str] = json.loads(done.stdout.strip().splitlines()[-1])["measured"]
        # --dump-after writes callgrind.out.1, .2, ... in the order the regions ran.
        parts = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        if every_thread:
            parts = parts[1::2]  # each region's own file follows the one written on entry
        if len(parts) != len(measured):
            raise RuntimeError(
                f"{side}: {len(parts)} callgrind dumps for {len(measured)} workloads "
                f"(is {_TOGGLE} in this Python's symbols?)"
            )
        return {
            name: Cost(_totals(part) / invocations, "instr")
            for name, part in zip(measured, parts, strict=True)
        }


def count_process_instructions(code: str) -> int:
    """Instructions of a whole ``python -c code`` process, start-up and exit included."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             "--log-file=/dev/null", sys.executable, "-c", code],
            cwd=_ROOT, env=environment(), check=True,
        )  # fmt: skip
        return _totals(out)


def _time_us(handler: Handler, calls: list[tuple[dict[str, Any], Any]]) -> float:
    start = time.perf_counter()
    _loop(handler, calls)
    return (time.perf_counter() - start) / len(calls) * 1e6


def time_pair(
    ours: tuple[str, str], baseline: tuple[str, str], rounds: int = 31, per_round: int = 200
) -> tuple[Cost, Cost, float]:
    """Microseconds per invocation of two (side, workload) handlers, and the median ratio."""
    handlers = [_prepare(side, [name])[name] for side, name in (ours, baseline)]
    events = [WORKLOADS[name].event for _, name in (ours, baseline)]
    for handler, event in zip(handlers, events, strict=True):
        _loop(handler, _copies(event, WARMUP))
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for handler, event, times in zip(handlers, events, samples, strict=True):
            times.append(_time_us(handler, _copies(event, per_round)))
    ratio = statistics.median(a / b for a, b in zip(*samples, strict=True))
    ours_cost, baseline_cost = (Cost(statistics.median(s), "µs") for s in samples)
    return ours_cost, baseline_cost, ratio


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One implementation's measured loops.")
    parser.add_argument("side")
    parser.add_argument("invocations", type=int)
    parser.add_argument("workloads", nargs="+")
    args = parser.parse_args(argv)
    _child(args.side, args.workloads, args.invocations)


if __name__ == "__main__":
    main()
