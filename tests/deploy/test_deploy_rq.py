"""RQ workers: each job runs in a forked work-horse that ends with os._exit; every event stored.

A ``redis-server`` of the test's own listens on a free loopback port. The job's
module (and so the client) is imported in each work-horse, after the fork, as RQ
does; nothing in the app flushes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import Program, python, run_script
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server is not installed: bash .ci/install-system (apt redis-server)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("rq") is None,
        reason="rq is not installed: pip install -r requirements-dev.txt",
    ),
]

JOBS = 40
EVENTS_PER_JOB = 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A throw-away redis-server on 127.0.0.1, nothing saved to disk."""
    port = _free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]
    with Program(command) as redis:
        redis.wait_for(r"[Rr]eady to accept connections", timeout=10)
        yield f"redis://127.0.0.1:{port}/0"
        with contextlib.suppress(subprocess.TimeoutExpired):
            redis.proc.terminate()


@pytest.mark.parametrize(
    ("worker_class", "spool"),
    # RQ's classes with a bounded teardown (apps/rq_workers.py: RQ's own wait, not ours).
    [
        ("rq_workers.Worker", False),
        ("rq_workers.SimpleWorker", False),
        ("rq_workers.Worker", True),
    ],
    ids=["work-horses", "simple-worker", "work-horses-spool"],
)
def test_burst_worker_delivers_every_job_event(
    server: DevServer,
    scoreboard: Scoreboard,
    redis_url: str,
    tmp_path: Path,
    worker_class: str,
    spool: bool,
) -> None:
    """40 jobs of 5 track() each, `rq worker --burst`, no flush anywhere: 200 stored, quiet.

    With ``DATABUDDY_SPOOL_DIR`` shared by every work-horse, each stored once too, and
    the directory is empty once the worker is done: each horse's exit leaves nothing.
    """
    prefix = uuid.uuid4().hex[:8]
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-rq"}
    spool_dir = tmp_path / "spool"
    if spool:
        env["DATABUDDY_SPOOL_DIR"] = str(spool_dir)
    queued = run_script("rq_jobs.py", redis_url, prefix, str(JOBS), env=env)
    assert queued.returncode == 0, queued.stderr
    started = time.monotonic()
    command = python("-m", "rq.cli", "worker", "--burst", "--url", redis_url)
    worker = run_script(
        *command[1:], "--worker-class", worker_class, "--quiet", env=env, timeout=60
    )
    seconds = time.monotonic() - started
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "Traceback" not in worker.stderr + worker.stdout, worker.stderr + worker.stdout
    assert "Databuddy" not in worker.stderr, worker.stderr
    ids = [f"{prefix}-{job}-{i}" for job in range(JOBS) for i in range(EVENTS_PER_JOB)]
    how = (
        "a forked work-horse per job (os._exit)"
        if worker_class.endswith(".Worker")
        else "in-process"
    )
    left = sorted(os.listdir(spool_dir)) if spool else []
    score = scoreboard.record(
        f"RQ `rq worker --burst` ({worker_class}: {how}), {JOBS} jobs, no flush"
        + (", shared spool" if spool else ""),
        ids,
        server,
        note=f"worker ran {seconds:.1f} s" + (f"; {len(left)} spool files left" if spool else ""),
    )
    expect_all_stored(score, JOBS * EVENTS_PER_JOB)
    assert left == []
