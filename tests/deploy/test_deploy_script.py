"""A script on this interpreter that ends without flush(): its events arrive, silently.

Python 3.12 refuses to start a thread once the interpreter is finalizing, so the
exit flush must run on the exiting thread: any thread it tried to start would be
an error on stderr (and, where the flush depends on it, lost events).
"""

from __future__ import annotations

import sys
import uuid

import pytest

from databuddy_otel._queue.settlement import CLOSED_WARNING
from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import run_script
from tests.reliability.conftest import Scoreboard

pytestmark = pytest.mark.slow

EVENTS = 25
PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.parametrize(
    ("mode", "scenario"),
    [
        ("dropped", "a client made in a function and dropped"),
        ("global", "a client kept in a module global"),
    ],
)
def test_script_end_delivers_without_a_word(
    server: DevServer, scoreboard: Scoreboard, mode: str, scenario: str
) -> None:
    """25 events, the script ends without flush(): 25 stored, nothing on stdout or stderr."""
    prefix = uuid.uuid4().hex[:8]
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-script"}
    done = run_script("short_script.py", mode, prefix, env=env)
    ids = [f"{prefix}-{i}" for i in range(EVENTS)]
    score = scoreboard.record(f"script on {PYTHON}: {scenario}, no flush", ids, server)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    expect_all_stored(score, EVENTS)


def test_daemon_thread_at_exit_is_told_apart_from_queued_events(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """A daemon thread tracks while the exit flush runs: every accepted event stored, and
    stderr says only that events tracked after shutdown were not sent."""
    prefix = uuid.uuid4().hex[:8]
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-script"}
    done = run_script("daemon_thread.py", prefix, env=env)
    accepted = [line.split()[1] for line in done.stdout.splitlines()]
    score = scoreboard.record(
        f"script on {PYTHON}: a daemon thread still tracking at exit",
        accepted,
        server,
        note="events tracked after the exit flush closed the queue are refused, and said so",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [CLOSED_WARNING], done.stderr
    expect_all_stored(score, len(accepted))
