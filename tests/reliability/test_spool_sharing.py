"""A spool directory shared with other processes, other programs and a nearly full disk.

The spool deletes or renames only files it created: a live writer's files are never
touched by a process starting on the same directory, foreign files (even ones named
like ours, and symlinks) stay, the directory is private to its user whatever the
umask, and a disk with little room still spools, in smaller segments.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from databuddy_otel import Databuddy
from databuddy_otel._spool import spool_format as fmt
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX spool (flock)")


def _python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_clients_starting_on_the_directory_never_touch_a_live_writer(
    server: DevServer, tmp_path: Path, scoreboard: Scoreboard
) -> None:
    """While one process writes (small segments, so many are made), another keeps starting
    clients on the same directory: the writer never loses its spool. On a loaded
    machine the writer can outrun delivery and fill its 512 KiB: those events are
    refused at track() (spool_full), and only those are missing."""
    writer = _python(
        f"""
        import time
        from databuddy_otel import Databuddy
        client = Databuddy(client_id="shared", api_url={server.url!r}, spool_dir={str(tmp_path)!r},
                           spool_max_bytes=512 * 1024)
        print("ready", flush=True)
        refused = []
        for i in range(20_000):
            if not client.track(name="written", event_id=f"written-{{i}}").success:
                refused.append(f"written-{{i}}")  # spool_full: the machine outran delivery
            if i % 200 == 0:
                time.sleep(0.01)
        assert client.flush(timeout=30).success
        print("unspooled", client.stats().unspooled, flush=True)
        print(" ".join(["refused", *refused]), flush=True)
        client.shutdown()
        """
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    starter = _python(
        f"""
        import os
        from databuddy_otel import Databuddy
        started = 0
        while not os.path.exists({str(tmp_path / "stop")!r}):
            client = Databuddy(client_id="shared", api_url={server.url!r},
                               spool_dir={str(tmp_path)!r})
            client.shutdown(timeout=0)
            started += 1
        print("started", started, flush=True)
        """
    )
    out, err = writer.communicate(timeout=120)
    (tmp_path / "stop").touch()
    starter_out, starter_err = starter.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert starter.returncode == 0, starter_err
    unspooled, refused_line = out.splitlines()[:2]
    assert unspooled.split() == ["unspooled", "0"], err
    refused = refused_line.split()[1:]
    started = int(starter_out.split()[-1])
    assert started >= 100
    assert "cannot write its spool" not in err
    score = scoreboard.record(
        "a writer and a process starting clients on one spool directory",
        [f"written-{i}" for i in range(20_000)],
        server,
        reported=refused,
        note=f"{started} clients started meanwhile; the writer's unspooled: 0"
        + (f"; {len(refused)} refused as spool_full, each told so" if refused else ""),
    )
    assert score.lost == score.reported == len(refused)  # nothing lost without a word


def test_foreign_files_and_symlinks_are_left_alone(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """Another program's dot-files, a symlink named like a segment, a fresh temporary file:
    none is deleted, renamed or followed."""
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    spool = tmp_path / "spool"
    spool.mkdir()
    old = time.time() - 3600
    foreign = {
        ".editor-swap.tmp": "an editor's file",
        ".lock.tmp": "",
        "README": "notes",
    }
    for name, text in foreign.items():
        (spool / name).write_text(text)
        os.utime(spool / name, (old, old))
    link = spool / "0000000000001-1-0000beef.spool"
    link.symlink_to(outside)
    tmp_link = spool / ".0000000000001-1-0000beef.tmp"
    tmp_link.symlink_to(outside)
    os.utime(tmp_link, (old, old), follow_symlinks=False)
    fresh = spool / ".0000000000002-2-0000cafe.tmp"  # a live writer's, just created
    fresh.write_bytes(b"")
    client = make_client(spool_dir=str(spool))
    client.track(name="e")
    assert client.flush(timeout=10).success
    client.shutdown()
    for name, text in foreign.items():
        assert (spool / name).read_text() == text
    assert link.is_symlink() and tmp_link.is_symlink()
    assert outside.read_text() == "outside"
    assert fresh.exists()
    assert len(server.events()) == 1


def test_an_old_orphan_of_ours_is_removed(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """A temporary segment a crashed process left a minute ago or more (empty, or headed
    as ours) is cleaned up; one with other content is not."""
    dest = fmt.destination("track", server.url, "test-site", None)
    old = time.time() - fmt.ORPHAN_AGE - 5
    empty = tmp_path / ".0000000000001-1-00000001.tmp"
    headed = tmp_path / ".0000000000001-1-00000002.tmp"
    other = tmp_path / ".0000000000001-1-00000003.tmp"
    empty.write_bytes(b"")
    headed.write_bytes(fmt.frame(f"h {fmt.MAGIC} {dest}".encode("ascii")))
    other.write_bytes(b"someone else's data\n")
    for path in (empty, headed, other):
        os.utime(path, (old, old))
    client = make_client(spool_dir=str(tmp_path))
    client.shutdown()
    assert not empty.exists() and not headed.exists()
    assert other.read_bytes() == b"someone else's data\n"


def test_the_spool_is_private_whatever_the_umask(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """Under umask 0 the directory is still 0700 and its files 0600."""
    spool = tmp_path / "private"
    server.set_outage(0)
    previous = os.umask(0)
    try:
        client = make_client(spool_dir=str(spool), timeout=0.2, retry_deadline=0.2)
        client.track(name="e")
        client.flush(timeout=0.5)
        assert stat.S_IMODE(spool.stat().st_mode) == 0o700
        files = [p for p in spool.iterdir() if p.name.endswith(fmt.SUFFIX)]
        assert files
        assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
        client.shutdown(timeout=0.2)
    finally:
        os.umask(previous)


def test_a_nearly_full_disk_spools_in_smaller_segments(
    server: DevServer, make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 200 KiB free, a segment reserves what fits instead of the spool switching off."""
    real = os.posix_fallocate

    def small_disk(fd: int, offset: int, length: int) -> None:
        if offset + length > 200 * 1024:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", small_disk)
    server.set_outage(0)
    client = make_client(spool_dir=str(tmp_path), timeout=0.2, retry_deadline=0.2)
    ids = {client.track(name="tight", properties={"i": i}).event_id for i in range(200)}
    client.flush(timeout=0.5)
    stats = client.stats()
    assert stats.unspooled == 0 and stats.spooled + stats.queued == 200
    sizes = [p.stat().st_size for p in tmp_path.iterdir() if p.name.endswith(fmt.SUFFIX)]
    assert sizes and max(sizes) <= 200 * 1024
    server.set_outage(None)
    assert client.flush(timeout=20).success
    assert {e["eventId"] for e in server.events()} == ids


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_really_small_filesystem_still_spools(server: DevServer, tmp_path: Path) -> None:
    """The same on a 1 MiB tmpfs, where the spool's usual 4 MiB segment cannot fit."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        server.set_outage(0)
        with Databuddy(
            client_id="tight",
            api_url=server.url,
            spool_dir=str(mount),
            timeout=0.2,
            retry_deadline=0.2,
        ) as client:
            ids = {client.track(name="tight", properties={"i": i}).event_id for i in range(300)}
            client.flush(timeout=0.5)
            assert client.stats().unspooled == 0
            server.set_outage(None)
            assert client.flush(timeout=20).success
        assert {e["eventId"] for e in server.events()} == ids
    finally:
        subprocess.run(["umount", str(mount)], check=False)
