"""Every multiprocessing start method, pools and executors, the client made at import: all stored.

With ``forkserver`` and ``spawn`` each worker imports the main module again, so its
client is made while the child is still being prepared, before multiprocessing
clears the finalizers a child inherits; and a ``forkserver`` child ends with
``os._exit`` after the executor's shutdown sentinel. ``with Pool()`` terminates its
workers with SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import re
import sys
import uuid

import pytest

from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import run_script
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX start methods"),
]

TASKS = 400
PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}"
FORMS = {
    "executor-with": "`with ProcessPoolExecutor(2)`",
    "executor-shutdown": "ProcessPoolExecutor(2) + shutdown(wait=True)",
    "pool-with": "`with Pool(2)` (terminates the workers)",
    "pool-close": "Pool(2) + close() + join()",
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("method", ["forkserver", "spawn", "fork"])
def test_every_task_event_is_stored(
    server: DevServer, scoreboard: Scoreboard, method: str, form: str
) -> None:
    """400 tasks on 2 workers, no flush anywhere: 400 stored once, nothing on stderr."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method!r} start method here")
    prefix = uuid.uuid4().hex[:8]
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-start-methods"}
    done = run_script("executor_jobs.py", method, form, prefix, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    workers = re.findall(r"^workers (\d+)$", done.stdout, re.MULTILINE)
    score = scoreboard.record(
        f"{FORMS[form]}, {method}, client made at import, {PYTHON}",
        [f"{prefix}-{n}" for n in range(TASKS)],
        server,
        note=f"{'/'.join(workers)} worker(s) ran tasks",
    )
    expect_all_stored(score, TASKS)
