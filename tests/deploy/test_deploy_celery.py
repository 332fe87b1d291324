"""A Celery worker with the prefork pool: warm shutdown delivers what its tasks tracked."""

from __future__ import annotations

import importlib.util
import signal
import uuid
from pathlib import Path

import pytest

from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import Program, python, run_script
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("celery") is None, reason="celery is not installed"
    ),
]

#: Not a multiple of the batch size (100): some events are still queued in a pool
#: process when it stops, whatever the split between the two processes.
TASKS = 250
CONCURRENCY = 2


def _run_worker(server: DevServer, tmp_path: Path, **env: str) -> tuple[list[str], str]:
    """Queue TASKS tasks, run a prefork worker until they succeeded, SIGTERM it (warm shutdown).

    Returns the tracked ids and a note: how many events were stored after the SIGTERM.
    """
    prefix = uuid.uuid4().hex[:8]
    environ = {
        "DATABUDDY_API_URL": server.url,
        "DATABUDDY_CLIENT_ID": "deploy-celery",
        "DEPLOY_BROKER_DIR": str(tmp_path),
        **env,
    }
    queued = run_script("celery_app.py", prefix, str(TASKS), env=environ)
    assert queued.returncode == 0, queued.stderr
    command = python(
        "-m", "celery", "--app", "celery_app", "worker", "--pool", "prefork",
        "--concurrency", str(CONCURRENCY), "--hostname", "deploy@localhost",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
    )  # fmt: skip
    with Program(command, env=environ) as worker:
        worker.wait_for(r"Task deploy\.track_event\[.*\] succeeded", count=TASKS, timeout=30)
        before = len(server.events())
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, worker.output
        assert "Traceback" not in worker.output, worker.output
    after = len(server.events()) - before
    return [f"{prefix}-{n}" for n in range(TASKS)], f"{after} stored after SIGTERM"


def test_warm_shutdown_delivers_everything(
    server: DevServer, scoreboard: Scoreboard, tmp_path: Path
) -> None:
    """-P prefork -c 2, a client made at import, no hook: SIGTERM, every event stored once."""
    ids, note = _run_worker(server, tmp_path)
    score = scoreboard.record(
        f"Celery worker -P prefork -c {CONCURRENCY}, warm shutdown (SIGTERM), no hook",
        ids,
        server,
        note=note,
    )
    expect_all_stored(score, TASKS)


def test_warm_shutdown_with_the_documented_hook(
    server: DevServer, scoreboard: Scoreboard, tmp_path: Path
) -> None:
    """The same with a flush in worker_process_shutdown (docs/serverless.md): every event stored."""
    ids, note = _run_worker(server, tmp_path, DEPLOY_FLUSH_ON_PROCESS_SHUTDOWN="1")
    score = scoreboard.record(
        f"Celery worker -P prefork -c {CONCURRENCY}, warm shutdown, flush in "
        "worker_process_shutdown",
        ids,
        server,
        note=note,
    )
    expect_all_stored(score, TASKS)
