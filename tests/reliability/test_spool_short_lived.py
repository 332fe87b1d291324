"""A spool shared by short-lived processes stays small and drains (issue 21).

Fork-per-job runners and crashing workers leave files behind: each must be taken
over at once by the next client or the parent, cost what it holds rather than what
its writer reserved, and a process that ends cleanly must leave no file with
nothing in it, whatever way it ends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from databuddy_otel._spool import spool_format as fmt
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.spool_files import left_body, write_segment

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX spool (flock, fork)")

#: What a writer reserves for each segment by default.
RESERVED = 4 << 20


def _dead_writers(directory: Path, server: DevServer, files: int, events: int) -> list[str]:
    """``files`` segments as processes that died a moment ago leave them: unlocked, fresh,
    their reserved space unused; the ids of the events in them."""
    dest = fmt.destination("track", server.url, "test-site", None)
    ids: list[str] = []
    for n in range(files):
        numbers = range(n * events, (n + 1) * events)
        lines = [fmt.event_line(i - n * events, True, left_body(i)) for i in numbers]
        name = f"{1_700_000_000_000 + n}-{40_000 + n}-{n:08x}"
        path = write_segment(directory, dest, lines, name)
        os.truncate(path, RESERVED)
        ids += [f"left-{i}" for i in numbers]
    return ids


def test_a_file_whose_writer_died_a_moment_ago_is_taken_over_at_once(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """Unlocked means its writer ended: a fresh segment is taken over whatever its age."""
    ids = _dead_writers(tmp_path, server, files=1, events=5)
    client = make_client(spool_dir=str(tmp_path))
    assert client.flush(timeout=10).success
    client.shutdown()
    assert sorted(e["eventId"] for e in server.events()) == sorted(ids)
    assert list(tmp_path.iterdir()) == []


def test_files_taken_over_cost_what_they_hold(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """Twenty dead writers' 4 MiB segments of 5 events each: taken over, they give their unused
    space back, so a client on the default 64 MiB bound still spools its own events."""
    left = _dead_writers(tmp_path, server, files=20, events=5)
    server.set_outage(503)
    client = make_client(spool_dir=str(tmp_path), retry_deadline=0.5)
    own = [client.track(name="own", event_id=f"own-{i}").success for i in range(10)]
    assert own == [True] * 10
    assert client.stats().undelivered == {}
    taken = [p.stat().st_size for p in tmp_path.iterdir() if p.stat().st_size < RESERVED]
    assert len(taken) == 20 and sum(taken) < RESERVED
    server.set_outage(None)
    assert client.flush(timeout=20).success
    client.shutdown()
    stored = sorted(e["eventId"] for e in server.events())
    assert stored == sorted(left + [f"own-{i}" for i in range(10)])
    assert list(tmp_path.iterdir()) == []
