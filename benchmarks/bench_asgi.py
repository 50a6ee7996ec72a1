"""FastAPI on Lambda: polyserve's ``App.mount`` against Mangum, measured in the same run.

``python -m benchmarks.bench_asgi`` (needs valgrind, and mangum from the ``bench``
dependency group) prints instructions per invocation of each handler for API
Gateway REST (v1) and HTTP (v2) GET and POST, and the instructions of a cold start:
a whole process that imports the handler module, builds the app and answers one
v2 GET.

Before anything is measured, ``verify`` calls each side once per workload and checks
that the FastAPI endpoint ran (``fastapi_app.CALLS``), and that both sides answer
alike: the same status, content type and body.

A synchronous entry point runs a mounted app on a loop thread of its own (and
FastAPI runs a plain ``def`` endpoint on a worker thread, on both sides), so the
per-invocation counts are taken with ``measure.count_instructions(...,
every_thread=True)``: the instructions of every thread during the measured loop.
The timed comparison (both handlers in one process, in alternating rounds,
``measure.time_pair``) is printed beside them.

The cold start is measured twice. "As is" is the process as it comes. CPython
runs its first full (generation 2) collection once enough objects have survived
younger collections; importing FastAPI and pydantic brings a process close to that
point, so whether it falls inside the first request, and on which side, depends
on a few hundred objects more or less (the app's own module shifts it either way).
Over a heap that size it is some 20M instructions. polyserve freezes the heap
built during init at its first invocation (``gc.freeze``), so a collection that
falls after that walks only what came later. "gc aligned" runs a full collection
on both sides at the same point, once FastAPI and the app's module are imported
and before the handler side is, so that both counts hold it at the same point.

Cold start runs with every module it loads compiled to bytecode first, as pip
compiles on install and a deployment bundle should ship it: without that (uv does
not compile, and ``PYTHONDONTWRITEBYTECODE`` keeps Python from writing the files)
each run would measure mostly the compiler, in proportion to the source each side
loads. Beside the instruction counts, the medians of 25 alternating wall-clock
runs of each process (which side runs first alternates too), and the median of
their paired differences. A cold start ends with the first answer: each process
then leaves with ``os._exit``, so that what a process does at exit (polyserve runs
the mounted app's lifespan shutdown there; on Lambda that happens when the platform
stops the process, not during a request) is counted on neither side.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import lambda_runtime, measure
from benchmarks.workloads import WORKLOADS as WORKLOADS_BY_NAME

_ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("get-v1", "get-v2", "post-v1", "post-valid")

_COLD = """
from benchmarks import lambda_runtime
from benchmarks.measure import _copies
from benchmarks.workloads import WORKLOADS
{aligned}from benchmarks.sides.{side} import handlers
import os
[(event, context)] = _copies(WORKLOADS["get-v2"].event, 1)
handlers()["get-v2"](event, context)
os._exit(0)
"""


# The variant with the process's first full collection at the same point on both sides.
_ALIGNED = """import gc
from benchmarks.sides import fastapi_app
gc.collect()
"""

_UNCOMPILED = """
import os, sys
leave = os._exit
os._exit = lambda status: None  # list the modules once the code has run
exec(compile(sys.argv[1], "<cold>", "exec"))

def is_current(source, cached):
    # What the import system checks: the source's mtime and size in the header.
    try:
        with open(cached, "rb") as file:
            header = file.read(16)
    except OSError:
        return False
    stat = os.stat(source)
    flags = int.from_bytes(header[4:8], "little")
    return flags != 0 or (
        int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
        and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF
    )

for module in list(sys.modules.values()):
    cached = getattr(module, "__cached__", None)
    source = getattr(module, "__file__", None)
    if cached and source and source.endswith(".py") and not is_current(source, cached):
        print(source)
sys.stdout.flush()
leave(0)
"""


def compile_loaded(code: str) -> None:
    """Compile to bytecode every module that running ``code`` loads, as an install would.

    A module whose bytecode is missing or older than its source (a checkout changed
    it) is compiled again: Python would otherwise compile it in every measured run,
    since the benchmarks' environment keeps it from writing bytecode.
    """
    import py_compile

    done = subprocess.run(
        [sys.executable, "-c", _UNCOMPILED, code], cwd=_ROOT, env=measure.environment(),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for path in done.stdout.split():
        py_compile.compile(path, doraise=True)


def wall_clock_ms(codes: dict[str, str], runs: int = 25) -> dict[str, list[float]]:
    """Milliseconds of each ``python -c code`` process, the sides alternating run by run.

    The side that goes first changes from round to round, so that whatever going
    first costs (a colder cache, say) falls on both sides alike.
    """
    times: dict[str, list[float]] = {name: [] for name in codes}
    for round_ in range(runs):
        order = list(codes.items())
        for name, code in order if round_ % 2 == 0 else reversed(order):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", code], cwd=_ROOT, env=measure.environment(),
                check=True,
            )  # fmt: skip
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


_ENDPOINTS = {"get-v1": "get_pet", "get-v2": "get_pet", "post-v1": "create_pet",
              "post-valid": "create_pet"}  # fmt: skip


def verify() -> None:
    """Exit unless each side's answer to each workload came from the FastAPI endpoint.

    Each handler is called once per workload: the endpoint's count must go up by one,
    and both sides must answer with the same status, content type and body.
    """
    import importlib

    from benchmarks.sides.fastapi_app import CALLS

    lambda_runtime.configure_logging()
    answers: dict[str, list[tuple[object, ...]]] = {}
    for side in ("polyserve_asgi", "mangum"):
        handlers = importlib.import_module(f"benchmarks.sides.{side}").handlers()
        for name in WORKLOADS:
            endpoint = _ENDPOINTS[name]
            before = CALLS[endpoint]
            [(event, context)] = measure._copies(WORKLOADS_BY_NAME[name].event, 1)
            answer = handlers[name](event, context)
            problem = WORKLOADS_BY_NAME[name].check(answer)
            if problem is not None:
                sys.exit(f"{side} answers {name} wrongly: {problem}")
            if CALLS[endpoint] != before + 1:
                sys.exit(f"{side} answered {name} without running the endpoint {endpoint}")
            headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
            multi = {k.lower(): v for k, v in (answer.get("multiValueHeaders") or {}).items()}
            kind = headers.get("content-type") or (multi.get("content-type") or [None])[0]
            answers.setdefault(name, []).append((answer["statusCode"], kind, answer["body"]))
    for name, (ours, theirs) in answers.items():
        if ours != theirs:
            sys.exit(f"{name}: polyserve answers {ours!r:.300}, mangum {theirs!r:.300}")


def main() -> None:
    if not measure.callgrind_available():
        sys.exit("valgrind is needed to count instructions")
    verify()
    ours = measure.count_instructions("polyserve_asgi", WORKLOADS, every_thread=True)
    theirs = measure.count_instructions("mangum", WORKLOADS, every_thread=True)
    print(f"{'workload':<12} {'polyserve':>12} {'mangum':>12} {'ratio':>7}")
    for name in WORKLOADS:
        a, b = ours[name].value, theirs[name].value
        print(f"{name:<12} {a:>12,.0f} {b:>12,.0f} {a / b:>7.2f}")
    print(f"{'workload':<12} {'polyserve':>12} {'mangum':>12} {'ratio':>7}  (time, µs)")
    for name in WORKLOADS:
        a_time, b_time, ratio = measure.time_pair(("polyserve_asgi", name), ("mangum", name))
        print(f"{name:<12} {a_time.value:>12,.1f} {b_time.value:>12,.1f} {ratio:>7.2f}")
    for variant, aligned in (("as is", ""), ("gc aligned", _ALIGNED)):
        cold_start(variant, aligned)


def cold_start(variant: str, aligned: str) -> None:
    """Print the instructions and wall-clock medians of both sides' cold starts."""
    codes = {
        side: _COLD.format(side=side, aligned=aligned) for side in ("polyserve_asgi", "mangum")
    }
    for code in codes.values():
        compile_loaded(code)
    cold = {side: measure.count_process_instructions(code) for side, code in codes.items()}
    a, b = cold["polyserve_asgi"], cold["mangum"]
    print(f"cold start, {variant}: {a:,} {b:,} instructions, {a / b:.3f}, {a - b:+,}")
    times = wall_clock_ms(codes)
    a_ms, b_ms = (statistics.median(times[side]) for side in codes)
    paired = statistics.median(
        x - y for x, y in zip(times["polyserve_asgi"], times["mangum"], strict=True)
    )
    print(
        f"cold start, {variant}: {a_ms:,.1f} {b_ms:,.1f} ms (medians), "
        f"median of paired differences {paired:+.1f} ms"
    )


if __name__ == "__main__":
    main()
