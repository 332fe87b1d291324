"""Process life: exit without flush, fork, and the SDK's own logging."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def test_exit_without_flush_delivers(server: DevServer) -> None:
    """A script that tracks and exits without flush() still delivers (atexit flush)."""
    script = textwrap.dedent(
        f"""
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="exit", api_url={server.url!r}, batch_timeout=60_000)
        for i in range(25):
            client.track(name="exiting", properties={{"i": i}})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert len(server.events(name="exiting")) == 25


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_delivers_and_parent_queue_is_not_resent(
    server: DevServer, make_client: MakeClient
) -> None:
    """A forked child tracks and delivers; events the parent queued are sent once."""
    client = make_client(batch_size=100, batch_timeout=60_000)
    client.track(name="parent_before_fork")
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            client.track(name="child")
            code = 0 if client.flush(timeout=5).processed == 1 else 1
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.flush()
    names = sorted(e["name"] for e in server.events())
    assert names == ["child", "parent_before_fork"]


def test_debug_logs_through_logging_and_hides_the_key(
    server: DevServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """debug=True logs to the 'databuddy' logger, never prints, and never shows the API key."""
    caplog.set_level(logging.DEBUG)
    client = Databuddy(
        api_key="dbdy_supersecret",
        api_url=server.url,
        debug=True,
        enable_batching=False,
        retry_deadline=2,
    )
    server.fail_next(1, status=503)
    client.track(name="e")
    client.track(name="")
    client.shutdown()
    assert any(r.name == "databuddy" for r in caplog.records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dbdy_supersecret" not in logged
    out = capsys.readouterr()
    assert out.out == ""
    assert "dbdy_supersecret" not in out.err
