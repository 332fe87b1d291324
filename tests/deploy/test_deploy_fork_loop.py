"""A hand-written fork-per-job loop whose children end with os._exit: every event stored once."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import run_script
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="os.fork"),
]

JOBS = 10
EVENTS_PER_JOB = 20
PARENT_EVENTS = 50


@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_children_that_os_exit_deliver_and_keep_their_status(
    server: DevServer, scoreboard: Scoreboard, tmp_path: Path, spool: bool
) -> None:
    """10 forked children track 20 each and os._exit(J % 3): 250 stored once, statuses kept.

    The parent's 50 events, still queued when it forks, are sent once, by the parent.
    With a spool shared by parent and children, the directory is empty at the end.
    """
    prefix = uuid.uuid4().hex[:8]
    env = {
        "DATABUDDY_API_URL": server.url,
        "DATABUDDY_CLIENT_ID": "deploy-fork-loop",
        # Python 3.12+ warns about any fork of a process with threads (the client's).
        "PYTHONWARNINGS": "ignore:This process:DeprecationWarning",
    }
    spool_dir = tmp_path / "spool"
    if spool:
        env["DATABUDDY_SPOOL_DIR"] = str(spool_dir)
    done = run_script("fork_loop.py", prefix, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    assert done.stdout.split() == ["statuses", *(str(job % 3) for job in range(JOBS))]
    ids = [f"{prefix}-{job}-{i}" for job in range(JOBS) for i in range(EVENTS_PER_JOB)]
    ids += [f"{prefix}-parent-{i}" for i in range(PARENT_EVENTS)]
    left = sorted(os.listdir(spool_dir)) if spool else []
    score = scoreboard.record(
        f"os.fork() per job, children end with os._exit ({JOBS} jobs), parent queue"
        + (", shared spool" if spool else ""),
        ids,
        server,
        note="exit statuses kept" + (f"; {len(left)} spool files left" if spool else ""),
    )
    expect_all_stored(score, JOBS * EVENTS_PER_JOB + PARENT_EVENTS)
    assert left == []
