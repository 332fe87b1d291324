"""Process life: exit without flush, SIGTERM, fork, prefork pools, serverless handlers."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import textwrap

import pytest

from databuddy_otel import Databuddy, flush_after
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard

_client: Databuddy | None = None


def _work(n: int) -> list[str]:
    assert _client is not None
    ids = [
        _client.track(name="forked_work", properties={"n": n, "i": i}).event_id for i in range(50)
    ]
    result = _client.flush(timeout=10)
    assert result.success and result.processed == 50
    return [i or "" for i in ids]


@pytest.mark.skipif(sys.platform == "win32", reason="fork start method")
def test_multiprocessing_fork_pool_delivers_once(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """Pool workers forked from a parent with queued events deliver theirs; the parent's go once."""
    global _client
    _client = make_client(batch_size=100, batch_timeout=60_000)
    parent_ids = [_client.track(name="parent_queued").event_id or "" for _ in range(30)]
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        child_ids = [i for ids in pool.map(_work, range(4)) for i in ids]
    assert _client.flush(timeout=10).success
    score = scoreboard.record(
        "multiprocessing fork pool (4 tasks) + parent queue",
        parent_ids + child_ids,
        server,
    )
    assert (score.sent, score.lost, score.duplicated) == (230, 0, 0)


def _run_script(
    body: str, server: DevServer, *, sigterm: bool = False, exit_code: int = 0
) -> list[str]:
    """Run a tracking script in a fresh interpreter; return the event ids it printed."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from databuddy_otel import Databuddy, exit_on_sigterm
        client = Databuddy(client_id="proc", api_url={server.url!r}, batch_timeout=60_000)
        """
    ) + textwrap.dedent(body)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ids = []
    for line in proc.stdout:
        if line.strip() == "ready" and sigterm:
            proc.send_signal(signal.SIGTERM)
            continue
        ids.append(line.strip())
    assert proc.wait(timeout=30) == exit_code
    proc.stdout.close()
    return ids


def test_exit_without_flush_delivers(server: DevServer, scoreboard: Scoreboard) -> None:
    """A script that tracks and returns without flush() delivers everything (atexit)."""
    ids = _run_script(
        """
        for i in range(200):
            print(client.track(name="exit_without_flush", properties={"i": i}).event_id)
        """,
        server,
    )
    score = scoreboard.record("process exits without flush()", ids, server)
    assert (score.sent, score.lost, score.duplicated) == (200, 0, 0)


def test_sigterm_with_the_documented_pattern_delivers(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """SIGTERM after exit_on_sigterm(): the queue is flushed and the process exits 0."""
    ids = _run_script(
        """
        exit_on_sigterm()
        for i in range(200):
            print(client.track(name="sigterm", properties={"i": i}).event_id)
        print("ready", flush=True)
        for _ in range(300):  # a main loop: Python runs signal handlers between steps
            time.sleep(0.1)
        """,
        server,
        sigterm=True,
    )
    score = scoreboard.record("SIGTERM with exit_on_sigterm()", ids, server)
    assert (score.sent, score.lost, score.duplicated) == (200, 0, 0)


def test_plain_sigterm_delivers_then_dies_by_the_signal(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """SIGTERM, no handler of the app's: the SDK's handler flushes, then SIGTERM ends the
    process as it would have (exit status -SIGTERM)."""
    ids = _run_script(
        """
        for i in range(200):
            print(client.track(name="plain_sigterm", properties={"i": i}).event_id)
        print("ready", flush=True)
        for _ in range(300):
            time.sleep(0.1)
        """,
        server,
        sigterm=True,
        exit_code=-signal.SIGTERM,
    )
    score = scoreboard.record("SIGTERM with no handler (the SDK's flush)", ids, server)
    assert (score.sent, score.lost, score.duplicated) == (200, 0, 0)


def test_an_application_sigterm_handler_is_left_alone(server: DevServer) -> None:
    """A SIGTERM handler installed before the first client stays the one that runs."""
    script = textwrap.dedent(
        f"""
        import signal, sys
        def mine(signum, frame):
            print("mine", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, mine)
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="proc", api_url={server.url!r}, batch_timeout=60_000)
        client.track(name="with_own_handler")
        assert signal.getsignal(signal.SIGTERM) is mine
        signal.raise_signal(signal.SIGTERM)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "mine\n", "")
    assert [e["name"] for e in server.events()] == ["with_own_handler"]  # the exit flush


def test_os_fork_child_delivers_and_parent_queue_goes_once(
    server: DevServer, scoreboard: Scoreboard
) -> None:
    """os.fork with events queued: the child's arrive, the parent's are not sent twice."""
    ids = _run_script(
        """
        import os
        for i in range(50):
            print(client.track(name="before_fork", properties={"i": i}).event_id, flush=True)
        pid = os.fork()
        if pid == 0:
            for i in range(50):
                print(client.track(name="in_child", properties={"i": i}).event_id, flush=True)
            client.shutdown(timeout=10)
            os._exit(0)
        os.waitpid(pid, 0)
        """,
        server,
    )
    score = scoreboard.record("os.fork with a queue in the parent", ids, server)
    assert (score.sent, score.lost, score.duplicated) == (100, 0, 0)


def test_serverless_handler_delivers_before_returning(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """A flush_after handler has delivered every event by the time it returns."""
    client = make_client(batch_size=100, batch_timeout=60_000)
    ids: list[str] = []

    @flush_after(client, timeout=10)
    def handler(n: int) -> None:
        for i in range(20):
            ids.append(client.track(name="lambda", properties={"n": n, "i": i}).event_id or "")

    for n in range(10):
        handler(n)
        assert len(server.events(name="lambda")) == len(ids)  # no flush needed after return
    score = scoreboard.record("serverless handler with flush_after (10 calls)", ids, server)
    assert (score.sent, score.lost, score.duplicated) == (200, 0, 0)


def test_first_send_imports_nothing(server: DevServer) -> None:
    """The worker's first request imports no module: a fork mid-import would break the child."""
    code = textwrap.dedent(
        f"""
        import sys
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="imports", api_url={server.url!r})
        before = set(sys.modules)
        client.track(name="first")
        assert client.flush(timeout=10).processed == 1
        print(sorted(set(sys.modules) - before))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
