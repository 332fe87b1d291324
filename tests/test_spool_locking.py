"""The spool's disk work stays off the lock that track() takes.

A new segment is made ahead by the spool thread (create, reserve, directory fsync),
and ``spool_fsync="always"`` syncs after the lock is released, so one caller's
disk wait never holds up another caller or a sender's acknowledgement.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from databuddy_otel._spool import spool_format as fmt
from databuddy_otel._spool import spool_writer
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def test_the_next_segment_is_made_by_the_spool_thread(
    server: DevServer, make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the first segment, every segment file is created on the spool thread."""
    makers: list[str] = []
    create = fmt.create

    def recording(*args: Any) -> tuple[str, int, int, int]:
        makers.append(threading.current_thread().name)
        return create(*args)

    monkeypatch.setattr(fmt, "create", recording)
    client = make_client(spool_dir=str(tmp_path), spool_max_bytes=1 << 20)
    for i in range(3000):  # about five segments of 128 KiB
        client.track(name="rolled", properties={"i": i, "pad": "x" * 40})
        if i % 100 == 99:
            time.sleep(0.3)  # the spool thread looks every 0.25 s
    assert client.flush(timeout=20).success
    assert len(server.events()) == 3000
    assert makers[0] == "MainThread" and len(makers) >= 4
    assert set(makers[1:]) == {"databuddy-spool"}, makers
    client.shutdown()
    assert list(tmp_path.glob("*.spool")) == []  # the unused spare is removed too


def test_one_callers_fsync_does_not_hold_up_another(
    server: DevServer, make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With spool_fsync='always', a caller stuck in fsync leaves the lock free."""
    client = make_client(spool_dir=str(tmp_path), spool_fsync="always")
    client.track(name="first")  # the segment exists
    release, stuck = threading.Event(), threading.Event()
    fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if threading.current_thread().name == "stuck":
            stuck.set()
            release.wait(10)
        fsync(fd)

    monkeypatch.setattr(spool_writer.os, "fsync", slow_fsync)
    caller = threading.Thread(name="stuck", target=client.track, kwargs={"name": "slow"})
    caller.start()
    assert stuck.wait(5)
    started = time.monotonic()
    assert client.track(name="other").success
    took = time.monotonic() - started
    release.set()
    caller.join(5)
    assert took < 1.0, f"track() waited {took:.2f}s for another caller's fsync"
    assert client.flush(timeout=10).success
    assert sorted(e["name"] for e in server.events()) == ["first", "other", "slow"]
