"""Outages past the retry deadline, refused and black-holed endpoints: cheap, bounded, counted."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from databuddy_otel import Databuddy, Undelivered
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard

pytestmark = pytest.mark.slow


def _stream(client: Databuddy, count: int, name: str) -> tuple[list[str], float, int]:
    """Track ``count`` events; return their ids, the slowest call and the largest queue seen."""
    ids, slowest, biggest = [], 0.0, 0
    for i in range(count):
        start = time.perf_counter()
        response = client.track(name=name, properties={"i": i})
        slowest = max(slowest, time.perf_counter() - start)
        biggest = max(biggest, client.stats().queued)
        ids.append(response.event_id or "")
    return ids, slowest, biggest


def test_long_outage_is_bounded_counted_and_recovers(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """Past the retry deadline: track() stays cheap, the queue bounded, every loss reported."""
    lost: list[Undelivered] = []
    client = make_client(
        batch_size=10,
        max_queue_size=100,
        retry_deadline=1.0,
        timeout=0.5,
        on_undelivered=lost.extend,
    )
    server.set_outage(0)  # no answer at all: the server is unreachable
    client.track(name="probe")
    while client.stats().reachable:  # wait until the outage is detected
        time.sleep(0.01)
    ids, slowest, biggest = _stream(client, 2000, "long_outage")
    assert slowest < 0.25
    assert biggest <= 100
    client.flush(timeout=10)
    server.set_outage(None)
    accounted = {u.event_id for u in lost} | {e["eventId"] for e in server.events()}
    assert set(ids) <= accounted
    stats = client.stats()
    assert sum(stats.undelivered.values()) == len(lost)
    assert client.track(name="after_outage").success
    assert client.flush(timeout=10).success
    assert server.events(name="after_outage")
    scoreboard.record(
        "outage longer than the retry deadline (queue 100)",
        ids,
        server,
        reported=(u.event_id or "" for u in lost),
        note=f"slowest track() {slowest * 1000:.1f} ms; every loss reported",
    )


@pytest.fixture
def refused_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def black_hole_url() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1000)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.mark.parametrize("endpoint", ["refused_url", "black_hole_url"])
def test_unreachable_endpoint_keeps_track_cheap_and_counts_everything(
    endpoint: str, request: pytest.FixtureRequest, scoreboard: Scoreboard, server: DevServer
) -> None:
    """Refused or silent endpoints: track() never stalls past the grace, all losses counted."""
    url = request.getfixturevalue(endpoint)
    lost: list[Undelivered] = []
    client = Databuddy(
        client_id="c",
        api_url=url,
        batch_size=10,
        max_queue_size=50,
        timeout=0.5,
        retry_deadline=1.0,
        on_undelivered=lost.extend,
        shutdown_timeout=2.0,
    )
    ids, slowest, biggest = _stream(client, 1000, endpoint)
    client.shutdown()
    assert slowest < 2.5  # at most one wait of timeout + grace before the outage is known
    assert biggest <= 50
    assert {u.event_id for u in lost} == set(ids)
    assert sum(client.stats().undelivered.values()) == len(ids)
    scoreboard.record(
        f"{'connection refused' if endpoint == 'refused_url' else 'black-holed endpoint'}",
        ids,
        server,
        reported=(u.event_id or "" for u in lost),
        note=f"nothing can arrive; slowest track() {slowest * 1000:.0f} ms",
    )
