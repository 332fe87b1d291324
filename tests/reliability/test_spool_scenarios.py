"""The spool under crashes and outages: kill -9, long outages, shared directories, forks.

``DATABUDDY_LONG_SCENARIOS=1`` runs the outage scenario at full length (a 60 s outage
with ``retry_deadline=5``) as docs/reliability.md reports it; by default it is scaled
down twelvefold (5 s with ``retry_deadline=0.4``) to keep the suite quick.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from databuddy_otel import Databuddy, Undelivered
from databuddy_otel._spool import spool_format as fmt
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard
from tests.spool_files import left_body, write_segment

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX spool (flock, fork)"),
]

LONG = os.environ.get("DATABUDDY_LONG_SCENARIOS") == "1"


def _start(server: DevServer, spool: Path, body: str) -> subprocess.Popen[str]:
    """A tracking process with a spool; it prints ``ready`` when its events are tracked."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="spool", api_url={server.url!r}, spool_dir={str(spool)!r},
                           batch_size=100, timeout=2)
        """
    ) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def _wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == expected:
            return
    raise AssertionError(f"the process ended before printing {expected!r}")


def _recover(server: DevServer, spool: Path) -> None:
    """A new process starting on the same spool: it takes over and delivers what was left."""
    with Databuddy(client_id="spool", api_url=server.url, spool_dir=str(spool)) as client:
        result = client.flush(timeout=60)
        assert result.success, result.error


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_kill_9_mid_burst_loses_nothing(
    server: DevServer, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """20,000 events to a slow server, kill -9 mid-way: the next process delivers the rest."""
    ids = [f"burst-{i}" for i in range(20_000)]
    server.delay_next(10_000, seconds=0.2)  # a slow server: the queue and the spool fill
    proc = _start(
        server,
        tmp_path,
        """
        for i in range(20_000):
            client.track(name="burst", event_id=f"burst-{i}")
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    try:
        _wait_for_line(proc, "ready")
        server.wait_for_events(1000, timeout=30)  # mid-way: some delivered, most not
    finally:
        _kill(proc)
    server.clear_faults()
    stored_at_kill = len(server.events())
    _recover(server, tmp_path)
    score = scoreboard.record(
        "kill -9 mid-burst (20,000 events, spool), then a new process",
        ids,
        server,
        note=f"{stored_at_kill} stored before the kill",
    )
    assert score.lost == 0
    assert list(tmp_path.glob("*.spool")) == []


def _outage_scenario(
    server: DevServer, make_client: MakeClient, tmp_path: Path, *, spool: bool
) -> tuple[list[str], list[Undelivered], Databuddy]:
    outage, deadline = (60.0, 5.0) if LONG else (5.0, 0.4)
    lost: list[Undelivered] = []
    options = {"spool_dir": str(tmp_path)} if spool else {}
    client = make_client(
        retry_deadline=deadline, timeout=min(deadline, 2.0), on_undelivered=lost.extend, **options
    )
    server.set_outage(0)
    ends = threading.Timer(outage, server.set_outage, args=(None,))
    ends.start()
    ids: list[str] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < outage:  # 100 events/s for the whole outage
            ids.extend(client.track(name="outage").event_id or "" for _ in range(10))
            time.sleep(0.1)
    finally:
        ends.join()
    client.flush(timeout=30 if spool else 10)
    return ids, lost, client


def test_outage_longer_than_the_retry_deadline_with_a_spool(
    server: DevServer, make_client: MakeClient, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """An outage twelve times the retry deadline: with a spool, nothing is lost."""
    ids, lost, client = _outage_scenario(server, make_client, tmp_path, spool=True)
    score = scoreboard.record(
        f"{'60 s' if LONG else '5 s'} outage, retry_deadline={'5' if LONG else '0.4'}, spool",
        ids,
        server,
        reported=(u.event_id or "" for u in lost),
    )
    assert (score.lost, score.reported) == (0, 0)
    assert client.stats().undelivered == {}


def test_outage_longer_than_the_retry_deadline_without_a_spool(
    server: DevServer, make_client: MakeClient, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """The same outage without a spool: what is lost is lost, and every loss is reported."""
    ids, lost, _ = _outage_scenario(server, make_client, tmp_path, spool=False)
    score = scoreboard.record(
        f"{'60 s' if LONG else '5 s'} outage, retry_deadline={'5' if LONG else '0.4'}, no spool",
        ids,
        server,
        reported=(u.event_id or "" for u in lost),
        note="every loss reported",
    )
    assert score.lost > 0 and score.reported == score.lost


def test_two_processes_share_a_spool_one_killed(
    server: DevServer, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """Two workers on one spool directory; one is killed; a replacement takes over its files."""
    server.set_outage(0)
    body = """
        for i in range(500):
            client.track(name="shared", event_id=f"WORKER-{i}")
        print("ready", flush=True)
        time.sleep(120)
        """
    survivor = _start(server, tmp_path, body.replace("WORKER", "a"))
    victim = _start(server, tmp_path, body.replace("WORKER", "b"))
    try:
        _wait_for_line(survivor, "ready")
        _wait_for_line(victim, "ready")
        _kill(victim)
        # The replacement takes the dead worker's files, never the live one's.
        replacement = Databuddy(client_id="spool", api_url=server.url, spool_dir=str(tmp_path))
        server.set_outage(None)
        assert replacement.flush(timeout=30).success
        replacement.shutdown()
        stored = {e["eventId"] for e in server.events()}
        assert {f"b-{i}" for i in range(500)} <= stored
    finally:
        survivor.send_signal(signal.SIGKILL)  # the survivor dies too, its events on disk
        survivor.wait(timeout=10)
        if survivor.stdout is not None:
            survivor.stdout.close()
    _recover(server, tmp_path)
    ids = [f"{w}-{i}" for w in "ab" for i in range(500)]
    score = scoreboard.record("two processes share a spool, both killed in turn", ids, server)
    assert score.lost == 0


def test_a_forked_child_spools_on_its_own(
    server: DevServer, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """A fork with a spool: the child writes its own files; nothing is sent twice."""
    server.set_outage(0)
    proc = _start(
        server,
        tmp_path,
        """
        import os
        for i in range(100):
            client.track(name="parent", event_id=f"parent-{i}")
        pid = os.fork()
        if pid == 0:
            for i in range(100):
                client.track(name="child", event_id=f"child-{i}")
            os._exit(0)  # its exit close finds the server down: its events stay in its files
        os.waitpid(pid, 0)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    try:
        _wait_for_line(proc, "ready")
    finally:
        _kill(proc)
    assert len(list(tmp_path.glob("*.spool"))) == 2  # the parent's and the child's
    server.set_outage(None)
    _recover(server, tmp_path)
    ids = [f"{who}-{i}" for who in ("parent", "child") for i in range(100)]
    score = scoreboard.record("fork with a spool (both killed), then a new process", ids, server)
    assert (score.lost, score.duplicated) == (0, 0)


@pytest.mark.parametrize("protocol", ["track", "legacy"])
@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_a_flaky_server_is_busy_not_down(
    server: DevServer,
    make_client: MakeClient,
    tmp_path: Path,
    scoreboard: Scoreboard,
    protocol: str,
    spool: bool,
) -> None:
    """45 % of answers are 503, 429 (Retry-After: 1), 500 or dropped: none refused, none lost."""
    options = {"spool_dir": str(tmp_path)} if spool else {}
    client = Databuddy(client_id="flaky", api_url=server.url, protocol=protocol, **options)
    server.set_flaky(0.45, seed=7)
    try:
        responses = [client.track(name="flaky", properties={"i": i}) for i in range(3000)]
        result = client.flush(timeout=120)
    finally:
        server.clear_faults()
        client.shutdown()
    refused = [r for r in responses if not r.success]
    score = scoreboard.record(
        f"45 % failing server, defaults, {protocol}, {'spool' if spool else 'memory only'}",
        (r.event_id or "" for r in responses),
        server,
        note=f"{len(refused)} refused",
    )
    assert refused == [] and result.success
    assert score.lost == 0


def test_spool_full_refuses_and_counts_new_events(
    server: DevServer, make_client: MakeClient, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """A spool too small for an outage: the overflow is refused as spool_full, nothing else lost."""
    lost: list[Undelivered] = []
    client = make_client(
        spool_dir=str(tmp_path),
        spool_max_bytes=20_000,
        on_undelivered=lost.extend,
        retry_deadline=0.3,
        timeout=0.2,
    )
    server.set_outage(0)
    responses = [client.track(name="full", properties={"i": i}) for i in range(400)]
    refused = [r for r in responses if not r.success]
    assert refused and all("spool full" in (r.error or "") for r in refused)
    assert client.stats().undelivered == {"spool_full": len(refused)}
    assert {u.event_id for u in lost} == {r.event_id for r in refused}
    server.set_outage(None)
    assert client.flush(timeout=20).success
    score = scoreboard.record(
        "spool limit too small for the outage (20 kB)",
        (r.event_id or "" for r in responses),
        server,
        reported=(u.event_id or "" for u in lost),
        note=f"{len(refused)} refused as spool_full, each told so",
    )
    assert score.lost == len(refused) == score.reported


def test_unwritable_spool_warns_once_and_keeps_events_in_memory(
    server: DevServer,
    make_client: MakeClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    scoreboard: Scoreboard,
) -> None:
    """A spool that cannot be written: one warning, events delivered from memory, counted."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the spool directory should be")
    with caplog.at_level(logging.WARNING, logger="databuddy"):
        client = make_client(spool_dir=str(blocker / "spool"))
        ids = [client.track(name="memory_only", properties={"i": i}).event_id for i in range(20)]
        assert client.flush(timeout=10).success
    warnings = [r for r in caplog.records if "cannot write its spool" in r.getMessage()]
    assert len(warnings) == 1
    score = scoreboard.record(
        "spool directory that cannot be written",
        (i or "" for i in ids),
        server,
        note="one warning; delivered from memory",
    )
    assert score.lost == 0
    assert client.stats().unspooled == 20


def test_damaged_records_and_foreign_files_are_skipped_and_counted(
    server: DevServer, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """A truncated last record and a garbage file never crash the client; the rest arrives."""
    dest = fmt.destination("track", server.url, "spool-site", None)
    lines = [fmt.event_line(i, True, left_body(i)) for i in range(5)]
    lines.append(fmt.ack_line([0]))
    lines.append(fmt.event_line(5, True, left_body(5))[:-20])  # a crash mid-write
    write_segment(tmp_path, dest, lines, "0000000000001-1-dead")
    junk = tmp_path / "0000000000002-2-0badf00d.spool"
    junk.write_bytes(os.urandom(300))
    (tmp_path / "notes.txt").write_text("not ours, never touched")
    lost: list[Undelivered] = []
    client = Databuddy(
        client_id="spool-site",
        api_url=server.url,
        spool_dir=str(tmp_path),
        on_undelivered=lost.extend,
    )
    try:
        assert client.flush(timeout=10).success
        assert sorted(e["eventId"] for e in server.events()) == [f"left-{i}" for i in (1, 2, 3, 4)]
        assert client.stats().undelivered == {"spool_corrupt": 2}
        assert len(lost) == 2
        scoreboard.record(
            "truncated last record + a garbage file in the spool",
            [f"left-{i}" for i in (1, 2, 3, 4)],
            server,
            note="2 damaged records skipped and counted (spool_corrupt)",
        )
    finally:
        client.shutdown()
    assert (tmp_path / "notes.txt").exists()
    assert list(tmp_path.glob("*.spool")) == [junk]  # named like ours, but not ours: kept
