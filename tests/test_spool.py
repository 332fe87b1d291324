"""The spool: written ahead before track() returns, acknowledged, bounded, robust to damage.

Crashes, outages and damaged files, with their scoreboard rows, are in
tests/reliability/test_spool_scenarios.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from databuddy_otel import Databuddy, Undelivered
from databuddy_otel._spool import spool_format as fmt
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.spool_files import left_body, write_segment


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool"))


def _event_lines(directory: Path) -> list[fmt.Record]:
    return [
        r
        for path in _segments(directory)
        for _, r in fmt.records(path.read_bytes())
        if r.kind == "e"
    ]


def test_events_are_on_disk_before_track_returns(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """Each accepted event is in a segment file, with its id, as soon as track() returns."""
    client = make_client(spool_dir=str(tmp_path), batch_size=100, batch_timeout=60_000)
    ids = [client.track(name="ahead", properties={"i": i}).event_id for i in range(10)]
    on_disk = [r.body for r in _event_lines(tmp_path)]
    assert len(on_disk) == 10
    assert all(f'"eventId":"{i}"' in body for i, body in zip(ids, on_disk))
    assert server.request_count == 0


def test_delivered_events_are_acknowledged_and_their_files_removed(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """After delivery and shutdown, the spool holds nothing: every segment was fully acked."""
    client = make_client(spool_dir=str(tmp_path), spool_max_bytes=1 << 20)
    for i in range(3000):  # several segments (a segment is 128 KiB here)
        client.track(name="acked", properties={"i": i, "pad": "x" * 40})
    assert client.flush(timeout=20).success
    assert client.stats().spooled == 0
    client.shutdown()
    assert len(server.events()) == 3000
    assert _segments(tmp_path) == []


@pytest.mark.slow
def test_a_full_memory_queue_spills_to_disk_without_waiting(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """With a spool, a full queue never makes track() wait: the event waits on disk."""
    client = make_client(spool_dir=str(tmp_path), batch_size=5, max_queue_size=5, timeout=2)
    server.delay_next(3, seconds=0.5)
    start = time.monotonic()
    responses = [client.track(name="spill", properties={"i": i}) for i in range(200)]
    assert time.monotonic() - start < 0.5
    assert all(r.success for r in responses)
    assert client.stats().spooled > 0
    assert client.flush(timeout=20).success
    assert sorted(e["properties"]["i"] for e in server.events()) == list(range(200))
    assert client.stats().undelivered == {}


def test_shutdown_delivers_what_spilled_to_disk(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """A shutdown with the server up sends the events waiting on disk, not just the queue."""
    client = make_client(spool_dir=str(tmp_path), batch_size=5, max_queue_size=5)
    server.delay_next(1, seconds=0.3)
    for i in range(300):
        client.track(name="spilled", properties={"i": i})
    assert client.stats().spooled > 0
    assert client.shutdown(timeout=20).success
    assert sorted(e["properties"]["i"] for e in server.events()) == list(range(300))
    assert _segments(tmp_path) == []


@pytest.mark.slow
def test_events_whose_retries_run_out_wait_in_the_spool(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """An unreachable server past the retry deadline loses nothing: events wait on disk."""
    client = make_client(spool_dir=str(tmp_path), retry_deadline=0.3, timeout=0.2)
    server.set_outage(0)
    ids = {client.track(name="waits", properties={"i": i}).event_id for i in range(50)}
    assert not client.flush(timeout=1).success
    stats = client.stats()
    assert stats.undelivered == {} and stats.queued + stats.spooled == 50
    server.set_outage(None)
    assert client.flush(timeout=20).success
    assert {e["eventId"] for e in server.events()} == ids
    assert client.stats().spooled == 0


def test_a_final_refusal_is_the_only_loss(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """A 4xx other than 408/425/429 loses the event (reported) and removes it from the spool."""
    lost: list[Undelivered] = []
    client = make_client(spool_dir=str(tmp_path), on_undelivered=lost.extend)
    server.fail_next(1, status=400)
    refused = client.track(name="refused").event_id
    assert not client.flush(timeout=10).success
    assert [u.event_id for u in lost] == [refused]
    client.shutdown()
    assert _segments(tmp_path) == []


def test_events_left_at_shutdown_stay_for_the_next_start(
    server: DevServer, make_client: MakeClient, tmp_path: Path
) -> None:
    """A shutdown that cannot deliver leaves the events on disk, not counted as lost."""
    client = make_client(spool_dir=str(tmp_path), timeout=0.3)
    server.set_outage(0)
    ids = {client.track(name="later").event_id for _ in range(20)}
    client.shutdown(timeout=0.5)
    assert client.stats().undelivered == {}
    server.set_outage(None)
    with Databuddy(client_id="test-site", api_url=server.url, spool_dir=str(tmp_path)) as again:
        assert again.flush(timeout=10).success
    assert {e["eventId"] for e in server.events()} == ids


def test_segments_for_another_destination_are_left_alone(server: DevServer, tmp_path: Path) -> None:
    """Events written for another site or URL are never sent here."""
    other = fmt.destination("track", "https://elsewhere.example", "other-site", None)
    path = write_segment(tmp_path, other, [fmt.event_line(0, False, left_body(0))], "1-1-07e4")
    client = Databuddy(client_id="spool-site", api_url=server.url, spool_dir=str(tmp_path))
    client.flush(timeout=2)
    client.shutdown()
    assert server.request_count == 0
    assert path.exists()


@pytest.mark.parametrize("policy", ["always", "never"])
def test_fsync_policies_deliver_alike(
    server: DevServer, make_client: MakeClient, tmp_path: Path, policy: str
) -> None:
    """spool_fsync='always' and 'never' change durability against power loss, not delivery."""
    client = make_client(spool_dir=str(tmp_path), spool_fsync=policy)
    for i in range(30):
        client.track(name="synced", properties={"i": i})
    assert client.flush(timeout=10).success
    assert len(server.events()) == 30


def test_spool_dir_from_the_environment(
    server: DevServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DATABUDDY_SPOOL_DIR turns the spool on."""
    monkeypatch.setenv("DATABUDDY_SPOOL_DIR", str(tmp_path))
    client = Databuddy(client_id="env", api_url=server.url, batch_timeout=60_000)
    client.track(name="from_env")
    assert len(_event_lines(tmp_path)) == 1
    client.shutdown()


def test_bad_spool_settings_are_refused(tmp_path: Path) -> None:
    """spool_fsync and spool_max_bytes are checked at construction."""
    with pytest.raises(ValueError, match="spool_fsync"):
        Databuddy(client_id="x", spool_dir=str(tmp_path), spool_fsync="sometimes")
    with pytest.raises(ValueError, match="spool_max_bytes"):
        Databuddy(client_id="x", spool_dir=str(tmp_path), spool_max_bytes=0)
