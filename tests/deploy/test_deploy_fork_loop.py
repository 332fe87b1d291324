"""A hand-written fork-per-job loop whose children end with os._exit: every event stored once."""

from __future__ import annotations

import sys
import uuid

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


def test_children_that_os_exit_deliver_and_keep_their_status(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """10 forked children track 20 each and os._exit(J % 3): 250 stored once, statuses kept.

    The parent's 50 events, still queued when it forks, are sent once, by the parent.
    """
    prefix = uuid.uuid4().hex[:8]
    env = {
        "DATABUDDY_API_URL": server.url,
        "DATABUDDY_CLIENT_ID": "deploy-fork-loop",
        # Python 3.12+ warns about any fork of a process with threads (the client's).
        "PYTHONWARNINGS": "ignore:This process:DeprecationWarning",
    }
    done = run_script("fork_loop.py", prefix, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    assert done.stdout.split() == ["statuses", *(str(job % 3) for job in range(JOBS))]
    ids = [f"{prefix}-{job}-{i}" for job in range(JOBS) for i in range(EVENTS_PER_JOB)]
    ids += [f"{prefix}-parent-{i}" for i in range(PARENT_EVENTS)]
    score = scoreboard.record(
        f"os.fork() per job, children end with os._exit ({JOBS} jobs), parent queue",
        ids,
        server,
        note="exit statuses kept",
    )
    expect_all_stored(score, JOBS * EVENTS_PER_JOB + PARENT_EVENTS)
