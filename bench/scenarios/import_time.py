"""Scenario 4: the time ``import <sdk>`` takes in a fresh interpreter.

Each sample is a new ``python -c`` process that times only the import
statement (interpreter start-up and ``site`` are excluded). An untimed import
in another fresh interpreter runs first, so that ``.pyc`` files of freshly
edited modules are compiled and the page cache is warm.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from bench.sdks import IMPORTS

_CODE = """\
import time
start = time.perf_counter_ns()
{statement}
print(time.perf_counter_ns() - start)
"""


def run(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    code = _CODE.format(statement=IMPORTS[sdk])
    for _warm_then_timed in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
    return {"import_ms": int(out.stdout.strip().splitlines()[-1]) / 1e6}
