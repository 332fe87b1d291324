"""A spool across two lives of a process: the next one on the same spool_dir delivers the rest."""

from __future__ import annotations

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
    pytest.mark.skipif(sys.platform == "win32", reason="the spool's file locks"),
]

EVENTS = 2000
OWN_EVENTS = 100


def test_next_process_flush_delivers_what_the_last_one_left(
    server: DevServer, scoreboard: Scoreboard, tmp_path: Path
) -> None:
    """A process dies with 2,000 events in its spool; the next tracks 100, flushes once: all stored.

    The first life runs while the server answers 503 (nothing is acknowledged), and
    ends with os._exit. The next one finds the server slow (its first answers take
    0.5 s), so its small queue is full of its own events when it calls flush().
    """
    prefix = uuid.uuid4().hex[:8]
    env = {
        "DATABUDDY_API_URL": server.url,
        "DATABUDDY_CLIENT_ID": "deploy-spool",
        "DATABUDDY_SPOOL_DIR": str(tmp_path / "spool"),
    }
    server.set_outage(503)
    killed = run_script("spool_jobs.py", "killed", prefix, env=env)
    assert (killed.returncode, killed.stderr) == (0, ""), killed.stderr
    server.set_outage(None)
    server.delay_next(3, seconds=0.5)
    takeover = run_script("spool_jobs.py", "busy-takeover", prefix, env=env)
    assert takeover.returncode == 0, takeover.stderr
    assert "Traceback" not in takeover.stderr, takeover.stderr
    ids = [f"{prefix}-{i}" for i in range(EVENTS)] + [
        f"{prefix}-own-{i}" for i in range(OWN_EVENTS)
    ]
    score = scoreboard.record(
        "spool: a process dies (os._exit) with 2,000 events on disk; the next one, "
        "busy and on a slow server, flushes once",
        ids,
        server,
        note=f"the next process's flush(): {takeover.stdout.strip()}",
    )
    expect_all_stored(score, EVENTS + OWN_EVENTS, details=takeover.stdout)
