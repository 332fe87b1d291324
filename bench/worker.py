"""Run one scenario for one SDK in this (fresh) process; print its result as JSON.

``python -m bench.worker SCENARIO SDK 'PARAMS_JSON'``. The last stdout line is
``RESULT {...}``. The process then ends with ``os._exit`` so that SDK exit hooks
(draining queues against a sink that may be down) do not stretch the run.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def main() -> None:
    scenario, sdk, raw = sys.argv[1:4]
    module = importlib.import_module(f"bench.scenarios.{scenario}")
    try:
        result = module.run(sdk, json.loads(raw))
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
