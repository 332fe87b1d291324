"""uvicorn with several workers: the middleware's lifespan flush delivers what they queued."""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import uuid
from pathlib import Path

import pytest

from databuddy_otel._runtime.sigterm import UVICORN_WARNING
from databuddy_otel.devserver import DevServer
from tests.deploy.outcome import expect_all_stored
from tests.deploy.processes import Program, get_all, get_while_stopping, listening_port, python
from tests.reliability.conftest import Scoreboard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("uvicorn") is None, reason="uvicorn is not installed"
    ),
]

REQUESTS = 400
#: Requests offered in the under-load test: more than a server answers before it stops.
UNDER_LOAD = 2000
WORKERS = 2


def _command() -> list[str]:
    """uvicorn serving apps/asgi_app.py with WORKERS workers on a free port."""
    return python(
        "-m", "uvicorn", "asgi_app:app", "--host", "127.0.0.1", "--port", "0",
        "--workers", str(WORKERS), "--no-access-log",
    )  # fmt: skip


def test_workers_deliver_everything_on_sigterm(server: DevServer, scoreboard: Scoreboard) -> None:
    """2 workers, DatabuddyASGIMiddleware: SIGTERM to the uvicorn parent, every event stored once.

    uvicorn's workers die by the re-raised SIGTERM after their graceful shutdown, so
    no atexit hook runs in them: the lifespan shutdown is the only flush there is.
    """
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}-{n}" for n in range(REQUESTS)]
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-uvicorn"}
    with Program(_command(), env=env) as uvicorn:
        port = listening_port(uvicorn, r"Uvicorn running on ")
        uvicorn.wait_for(r"Application startup complete", count=WORKERS)
        pids = set(get_all(port, [f"/hit/{i}" for i in ids]))
        before = len(server.events())
        uvicorn.send_signal(signal.SIGTERM)
        assert uvicorn.wait(timeout=20) == 0, uvicorn.output
        assert "Traceback" not in uvicorn.output, uvicorn.output
    after = len(server.events()) - before
    score = scoreboard.record(
        f"uvicorn, {WORKERS} workers, FastAPI + DatabuddyASGIMiddleware, SIGTERM",
        ids,
        server,
        note=f"{len(pids)} workers served; {after} stored after SIGTERM",
    )
    expect_all_stored(score, REQUESTS)


def test_sigterm_under_load_delivers_every_answered_request(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """SIGTERM while requests are in flight: every request answered 200 has its event stored."""
    run = uuid.uuid4().hex[:8]
    paths = [f"/hit/{run}-{n}" for n in range(UNDER_LOAD)]  # sent until the server is gone
    env = {"DATABUDDY_API_URL": server.url, "DATABUDDY_CLIENT_ID": "deploy-uvicorn"}
    with Program(_command(), env=env) as uvicorn:
        port = listening_port(uvicorn, r"Uvicorn running on ")
        uvicorn.wait_for(r"Application startup complete", count=WORKERS)
        stop = functools.partial(uvicorn.send_signal, signal.SIGTERM)
        answered = get_while_stopping(port, paths, stop_after=REQUESTS // 2, stop=stop)
        assert uvicorn.wait(timeout=20) == 0, uvicorn.output
        assert "Traceback" not in uvicorn.output, uvicorn.output
    score = scoreboard.record(
        f"uvicorn, {WORKERS} workers, SIGTERM with requests in flight",
        [p.rpartition("/")[2] for p in answered],
        server,
        note=f"SIGTERM after {REQUESTS // 2} answers; {len(answered)} answered in all",
    )
    expect_all_stored(score, len(answered))


def test_without_the_middleware_sigterm_flushes_and_names_the_fix(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """No middleware: SIGTERM flushes what each worker queued, and each says what can still be
    lost and how to fix it (uvicorn ends its workers by the re-raised signal)."""
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}-{n}" for n in range(REQUESTS)]
    env = {
        "DATABUDDY_API_URL": server.url,
        "DATABUDDY_CLIENT_ID": "deploy-uvicorn",
        "DEPLOY_ASGI_MIDDLEWARE": "0",
    }
    with Program(_command(), env=env) as uvicorn:
        port = listening_port(uvicorn, r"Uvicorn running on ")
        uvicorn.wait_for(r"Application startup complete", count=WORKERS)
        pids = set(get_all(port, [f"/hit/{i}" for i in ids]))
        uvicorn.send_signal(signal.SIGTERM)
        assert uvicorn.wait(timeout=20) == 0, uvicorn.output
        output = uvicorn.output
    assert "Traceback" not in output, output
    assert output.count(UVICORN_WARNING) == WORKERS, output
    unexpected = [
        line for line in output.splitlines() if not line.startswith(("INFO:", UVICORN_WARNING))
    ]
    assert unexpected == [], output
    score = scoreboard.record(
        f"uvicorn, {WORKERS} workers, FastAPI without the middleware, SIGTERM",
        ids,
        server,
        note=f"{len(pids)} workers served; each flushed on SIGTERM and warned with the fix",
    )
    expect_all_stored(score, REQUESTS)


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "no-middleware"])
def test_with_a_spool_sigterm_leaves_no_file_behind(
    server: DevServer, scoreboard: Scoreboard, tmp_path: Path, middleware: bool
) -> None:
    """2 workers sharing a spool: after SIGTERM every event is stored and the directory is empty,
    although each worker dies by the re-raised signal, when no exit hook runs."""
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}-{n}" for n in range(REQUESTS // 4)]
    spool_dir = tmp_path / "spool"
    env = {
        "DATABUDDY_API_URL": server.url,
        "DATABUDDY_CLIENT_ID": "deploy-uvicorn",
        "DATABUDDY_SPOOL_DIR": str(spool_dir),
        "DEPLOY_ASGI_MIDDLEWARE": "1" if middleware else "0",
    }
    with Program(_command(), env=env) as uvicorn:
        port = listening_port(uvicorn, r"Uvicorn running on ")
        uvicorn.wait_for(r"Application startup complete", count=WORKERS)
        get_all(port, [f"/hit/{i}" for i in ids])
        uvicorn.send_signal(signal.SIGTERM)
        assert uvicorn.wait(timeout=20) == 0, uvicorn.output
        assert "Traceback" not in uvicorn.output, uvicorn.output
    left = sorted(os.listdir(spool_dir))
    how = "DatabuddyASGIMiddleware" if middleware else "no middleware"
    score = scoreboard.record(
        f"uvicorn, {WORKERS} workers, {how}, shared spool, SIGTERM",
        ids,
        server,
        note=f"{len(left)} spool files left",
    )
    expect_all_stored(score, len(ids))
    assert left == []
