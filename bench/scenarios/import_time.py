"""Scenario 4: what ``import <sdk>``, and a cold start, take in a fresh interpreter.

Each sample is a new ``python -c`` process that times only the statements
(interpreter start-up and ``site`` are excluded). ``import_ms`` is the import
statement; ``cold_ms`` (SDKs in ``COLD_STARTS``) is the import, a client, and the
first event queued: what a script or a serverless function waits before its
own work goes on. The process ends with ``os._exit`` so no exit flush is timed
or waited for. An untimed run in another fresh interpreter comes first, with
bytecode writing on, so that ``.pyc`` files of freshly edited modules are
compiled (as an installed package's are) and the page cache is warm.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bench.sdks import COLD_STARTS, IMPORTS

_CODE = """\
import os, time
start = time.perf_counter_ns()
{statement}
print(time.perf_counter_ns() - start, flush=True)
os._exit(0)
"""


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    result = {"import_ms": _timed(IMPORTS[sdk])}
    if sdk in COLD_STARTS:
        result["cold_ms"] = _timed(COLD_STARTS[sdk].format(url=params["url"]))
    return result


def _timed(statement: str) -> float:
    code = _CODE.format(statement=statement)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = None
    for _warm_then_timed in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env=env,
        )
    assert out is not None
    return int(out.stdout.strip().splitlines()[-1]) / 1e6
