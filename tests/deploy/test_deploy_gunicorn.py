"""gunicorn sync workers: every event a request produced is stored once the master has stopped."""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import Program, get_all, get_while_stopping, listening_port, python
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None, reason="gunicorn is not installed"
    ),
]

REQUESTS = 400
#: Requests offered in the under-load test: more than a server answers before it stops.
UNDER_LOAD = 2000


@dataclass
class Run:
    sent: list[str]  #: the event ids the requests produced
    workers: int  #: how many worker processes served them
    after_sigterm: int  #: events stored only once the master had the SIGTERM

    @property
    def note(self) -> str:
        return f"{self.workers} workers served; {self.after_sigterm} stored after SIGTERM"


def _serve_and_stop(server: DevServer, *options: str) -> Run:
    """Run apps/flask_app.py under gunicorn, send REQUESTS requests, SIGTERM the master."""
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}-{n}" for n in range(REQUESTS)]
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-gunicorn"}
    command = python(
        "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "4", *options, "flask_app:app"
    )
    with Program(command, env=env) as gunicorn:
        port = listening_port(gunicorn, r"Listening at: ")
        pids = set(get_all(port, [f"/hit/{i}" for i in ids]))
        before = len(server.events())
        gunicorn.send_signal(signal.SIGTERM)
        assert gunicorn.wait(timeout=20) == 0, gunicorn.output
        assert "Traceback" not in gunicorn.output, gunicorn.output
    sent = [f"{i}.{kind}" for i in ids for kind in ("log", "track")]
    names = {e["eventId"].rpartition(".")[2]: e["name"] for e in server.events()}
    assert names == {"log": "page_view", "track": "request_done"}, names
    return Run(sent, len(pids), len(server.events()) - before)


@pytest.mark.parametrize("preload", [False, True], ids=["import-in-worker", "preload"])
def test_sync_workers_deliver_everything_on_sigterm(
    server: DevServer, scoreboard: Scoreboard, preload: bool
) -> None:
    """4 sync workers, a client made at import: SIGTERM to the master, every event stored once."""
    run = _serve_and_stop(server, *(["--preload"] if preload else []))
    how = "--preload" if preload else "app imported in each worker"
    score = scoreboard.record(
        f"gunicorn, 4 sync workers ({how}), SIGTERM", run.sent, server, note=run.note
    )
    expect_all_stored(score, 2 * REQUESTS)


def test_recycled_workers_deliver_everything(server: DevServer, scoreboard: Scoreboard) -> None:
    """--max-requests recycles workers during the run: each one delivers its events as it ends."""
    run = _serve_and_stop(server, "--max-requests", "60", "--max-requests-jitter", "20")
    score = scoreboard.record(
        "gunicorn --max-requests 60 (workers recycled), SIGTERM", run.sent, server, note=run.note
    )
    assert run.workers > 4, "no worker was recycled"
    expect_all_stored(score, 2 * REQUESTS)


def test_sigterm_under_load_delivers_every_answered_request(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """SIGTERM while requests are in flight: every request answered 200 has both events stored."""
    run = uuid.uuid4().hex[:8]
    paths = [f"/hit/{run}-{n}" for n in range(UNDER_LOAD)]  # sent until the server is gone
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-gunicorn"}
    command = python("-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "4", "flask_app:app")
    with Program(command, env=env) as gunicorn:
        port = listening_port(gunicorn, r"Listening at: ")
        stop = functools.partial(gunicorn.send_signal, signal.SIGTERM)
        answered = get_while_stopping(port, paths, stop_after=REQUESTS // 2, stop=stop)
        assert gunicorn.wait(timeout=20) == 0, gunicorn.output
        assert "Traceback" not in gunicorn.output, gunicorn.output
    sent = [f"{p.rpartition('/')[2]}.{kind}" for p in answered for kind in ("log", "track")]
    score = scoreboard.record(
        "gunicorn, 4 sync workers, SIGTERM with requests in flight",
        sent,
        server,
        note=f"SIGTERM after {REQUESTS // 2} answers; {len(answered)} answered in all",
    )
    expect_all_stored(score, 2 * len(answered))


@pytest.mark.skipif(importlib.util.find_spec("uvicorn") is None, reason="uvicorn is not installed")
def test_uvicorn_workers_without_the_middleware_deliver_on_sigterm(
    server: DevServer, scoreboard: Scoreboard, tmp_path: Path
) -> None:
    """-k uvicorn.workers.UvicornWorker, FastAPI without the middleware: every event stored,
    and the spool the workers share is left empty.

    The worker imports the app while SIGTERM has its default action, so the SDK's
    handler is in place; uvicorn restores it after its graceful shutdown and raises
    the signal again: the handler delivers, then the worker dies by SIGTERM as before.
    """
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}-{n}" for n in range(REQUESTS)]
    spool_dir = tmp_path / "spool"
    env = {
        "DATABUDDY_API_URL": server.url,
        "DATABUDDY_CLIENT_ID": "deploy-gunicorn",
        "DATABUDDY_SPOOL_DIR": str(spool_dir),
        "DEPLOY_ASGI_MIDDLEWARE": "0",
    }
    command = python(
        "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "2",
        "-k", "uvicorn.workers.UvicornWorker", "asgi_app:app",
    )  # fmt: skip
    with Program(command, env=env) as gunicorn:
        port = listening_port(gunicorn, r"Listening at: ")
        gunicorn.wait_for(r"Application startup complete", count=2)
        pids = set(get_all(port, [f"/hit/{i}" for i in ids]))
        gunicorn.send_signal(signal.SIGTERM)
        assert gunicorn.wait(timeout=20) == 0, gunicorn.output
        output = gunicorn.output
    assert "Traceback" not in output and "Databuddy" not in output, output
    left = sorted(os.listdir(spool_dir))
    score = scoreboard.record(
        "gunicorn -k uvicorn.workers.UvicornWorker (2), no middleware, shared spool, SIGTERM",
        ids,
        server,
        note=f"{len(pids)} workers served; {len(left)} spool files left",
    )
    expect_all_stored(score, REQUESTS)
    assert left == []
