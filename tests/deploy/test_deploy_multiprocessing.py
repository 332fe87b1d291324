"""multiprocessing children (fork) that track and never flush: what reaches the server."""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import run_script
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="the fork start method"),
]

TASKS = 4
EVENTS_PER_TASK = 500


@dataclass
class Jobs:
    ids: list[str]  #: the event ids the tasks tracked
    queued: list[str]  #: per task: events still in its process's queue when it returned
    seconds: float  #: how long the script ran

    @property
    def note(self) -> str:
        queued = "/".join(self.queued)
        return f"queued when each task returned: {queued}; script ran {self.seconds:.1f} s"


def _settled(server: DevServer) -> list[dict[str, object]]:
    """The stored events once requests a killed process left in flight have landed."""
    events = server.events()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.2)  # the count must hold still this long: nothing else says it is done
        later = server.events()
        if len(later) == len(events):
            return later
        events = later
    return events


def _run_jobs(server: DevServer, mode: str, **env: str) -> Jobs:
    """Run apps/pool_jobs.py MODE against ``server``."""
    prefix = uuid.uuid4().hex[:8]
    environ = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-jobs", **env}
    started = time.monotonic()
    done = run_script("pool_jobs.py", mode, prefix, env=environ)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    queued = re.findall(r"^queued (\d+)$", done.stdout, re.MULTILINE)
    ids = [f"{prefix}-{t}-{i}" for t in range(TASKS) for i in range(EVENTS_PER_TASK)]
    return Jobs(ids, queued, seconds)


@pytest.mark.parametrize(
    ("mode", "scenario"),
    [
        ("pool", "Pool(4), close() + join(), client made at import"),
        ("pool-lazy", "Pool(4), close() + join(), client made in the task"),
        ("processes", "4 Process children whose target returns"),
    ],
)
def test_children_that_end_normally_deliver_everything(
    server: DevServer, scoreboard: Scoreboard, mode: str, scenario: str
) -> None:
    """Children that end normally deliver every event they queued, without flush(): 2,000 stored."""
    jobs = _run_jobs(server, mode)
    scenario = f"multiprocessing {scenario} (fork, no flush)"
    score = scoreboard.record(scenario, jobs.ids, server, note=jobs.note)
    expect_all_stored(score, TASKS * EVENTS_PER_TASK)


def test_pool_context_manager_without_a_spool(server: DevServer, scoreboard: Scoreboard) -> None:
    """`with Pool(4)` terminates its workers with SIGTERM: each flushes first, 2,000 stored.

    The workers inherit the SDK's SIGTERM handler (SIGTERM had its default action when
    the client was made), which delivers within shutdown_timeout and then lets the
    signal end the worker; a worker already ending finishes its exit flush first.
    """
    jobs = _run_jobs(server, "pool-with")
    score = scoreboard.record(
        "multiprocessing `with Pool(4)`: map (terminates the workers), no spool",
        jobs.ids,
        server,
        note=jobs.note,
    )
    assert jobs.seconds < 10
    expect_all_stored(score, TASKS * EVENTS_PER_TASK)


def test_pool_context_manager_with_a_spool(
    server: DevServer, scoreboard: Scoreboard, tmp_path: Path
) -> None:
    """`with Pool(4)` and a spool: whatever the workers leave, the next process delivers.

    The workers flush on SIGTERM (previous test), so usually nothing is left; the
    next process lets its spool thread deliver what it took over, then flushes (a
    flush() at once may return early: see test_deploy_spool.py). Delivery from a
    spool is at least once: a worker killed with a request in flight never learns
    that the server stored it, so the next process sends it again. Each process
    stores an event at most once.
    """
    spool = {"DATABUDDY_SPOOL_DIR": str(tmp_path / "spool")}
    jobs = _run_jobs(server, "pool-with", **spool)
    first = Counter(e["eventId"] for e in _settled(server))
    environ = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-jobs", **spool}
    takeover = run_script("pool_jobs.py", "takeover", "-", env=environ)
    assert takeover.returncode == 0, takeover.stdout + takeover.stderr
    assert "Traceback" not in takeover.stderr, takeover.stderr
    second = Counter(e["eventId"] for e in server.events()) - first
    score = scoreboard.record(
        "multiprocessing `with Pool(4)`: map (terminates the workers), spool_dir, "
        "then a new process on it",
        jobs.ids,
        server,
        note=f"{jobs.note}; {sum(second.values())} delivered by the next process "
        "(duplicates: requests in flight when the workers were killed)",
    )
    assert (score.sent, score.lost) == (TASKS * EVENTS_PER_TASK, 0)
    assert max(first.values()) == 1 and max(second.values(), default=1) == 1
