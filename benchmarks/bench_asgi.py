"""FastAPI on Lambda: polyserve's ``App.mount`` against Mangum, measured in the same run.

``python -m benchmarks.bench_asgi`` (needs valgrind, and mangum from the ``bench``
dependency group) prints instructions per invocation of each handler for API
Gateway REST (v1) and HTTP (v2) GET and POST, and the instructions of a cold start:
a whole process that imports the handler module, builds the app and answers one
v2 GET.

Caveat: a synchronous entry point runs a mounted app on a loop thread of its own,
and callgrind's collection toggle counts only the thread that entered the toggled
function, so the per-invocation instruction counts of polyserve leave out the work
done on that thread. The timed comparison (both handlers in one process, in
alternating rounds, ``measure.time_pair``) is printed beside them and is the fair
one; the cold-start count covers the whole process, every thread included.
"""

from __future__ import annotations

import sys

from benchmarks import measure

WORKLOADS = ("get-v1", "get-v2", "post-v1", "post-valid")

_COLD = """
from benchmarks import lambda_runtime
from benchmarks.measure import _copies
from benchmarks.workloads import WORKLOADS
from benchmarks.sides.{side} import handlers
[(event, context)] = _copies(WORKLOADS["get-v2"].event, 1)
handlers()["get-v2"](event, context)
"""


def main() -> None:
    if not measure.callgrind_available():
        sys.exit("valgrind is needed to count instructions")
    ours = measure.count_instructions("polyserve_asgi", WORKLOADS)
    theirs = measure.count_instructions("mangum", WORKLOADS)
    print(f"{'workload':<12} {'polyserve':>12} {'mangum':>12} {'ratio':>7}")
    for name in WORKLOADS:
        a, b = ours[name].value, theirs[name].value
        print(f"{name:<12} {a:>12,.0f} {b:>12,.0f} {a / b:>7.2f}")
    print(f"{'workload':<12} {'polyserve':>12} {'mangum':>12} {'ratio':>7}  (time, µs)")
    for name in WORKLOADS:
        a_time, b_time, ratio = measure.time_pair(("polyserve_asgi", name), ("mangum", name))
        print(f"{name:<12} {a_time.value:>12,.1f} {b_time.value:>12,.1f} {ratio:>7.2f}")
    cold = {side: measure.count_process_instructions(_COLD.format(side=side))
            for side in ("polyserve_asgi", "mangum")}  # fmt: skip
    a, b = cold["polyserve_asgi"], cold["mangum"]
    print(f"{'cold start':<12} {a:>12,} {b:>12,} {a / b:>7.2f}")


if __name__ == "__main__":
    main()
