"""Cold start: importing polyserve and its AWS adapter, then building an app and answering once.

Cold start is wall-clock by nature (imports read files, and the first request loads
modules), so these are medians of many fresh ``python -c`` processes, each run
alternating with a bare interpreter (``BARE``) whose time is subtracted; instruction
counts of the same processes under callgrind are reported beside them where valgrind
is installed. Every process, the bare one too, leaves with ``os._exit`` once it has
answered: a cold start is import plus the first invocation, and what an interpreter
does at exit (a last full garbage collection over everything still alive) is
neither. On Lambda the process lives on after its first invocation. Bytecode is
compiled first, as an installed package's is (pip compiles on install, and a
deployment bundle should ship it): otherwise every run would measure the compiler
rather than the import.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.events import http_v2
from benchmarks.measure import environment

__all__ = ["BARE", "FIRST_REQUEST", "IMPORT", "compile_bytecode", "overhead_ms"]

_LEAVE = "\nimport os\nos._exit(0)\n"

BARE = _LEAVE.strip()

IMPORT = "import polyserve, polyserve_aws" + _LEAVE

# An app without pydantic models: ten routes with a path parameter, the Lambda handler,
# and one request from API Gateway (HTTP API) to one of them.
FIRST_REQUEST = f"""
import polyserve, polyserve_aws
from polyserve import App

app = App("cold")

def get_item(item_id: int) -> dict:
    return {{"id": item_id, "name": "Rex"}}

for i in range(10):
    app.get(f"/r{{i}}/{{{{item_id:int}}}}", name=f"r{{i}}")(get_item)
handler = polyserve_aws.handler(app)

class Context:
    aws_request_id = "5f0c2d3e-1a2b-4c3d-8e4f-000000000001"
    function_name = "cold"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:cold"
    def get_remaining_time_in_millis(self):
        return 30_000

event = {http_v2("GET", "/r7/42")!r}
assert handler(event, Context())["statusCode"] == 200
{_LEAVE}"""

_ROOT = Path(__file__).resolve().parent.parent


def compile_bytecode() -> None:
    """Compile polyserve's and the adapter's modules, as an install does."""
    for folder in (_ROOT / "src" / "polyserve", _ROOT / "adapters" / "aws" / "src"):
        compileall.compile_dir(folder, quiet=1)


def _run_ms(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=environment())
    return (time.perf_counter() - start) * 1e3


def overhead_ms(code: str, runs: int = 41) -> tuple[float, float]:
    """Median milliseconds of ``python -c code`` over ``python -c BARE``, and of the latter.

    The two run alternately, so that load on the machine slows both alike; the
    overhead is the median of the per-pair differences.
    """
    _run_ms(code)  # the first run fills the OS's file cache
    pairs = [(_run_ms(code), _run_ms(BARE)) for _ in range(runs)]
    return (
        statistics.median(ours - bare for ours, bare in pairs),
        statistics.median(bare for _, bare in pairs),
    )
