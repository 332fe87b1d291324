"""Server faults during a stream of events: nothing lost, duplicates only from lost answers."""

from __future__ import annotations

import random
import threading

import pytest

from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient
from tests.reliability.conftest import Scoreboard, duplicates_come_from_lost_answers

pytestmark = pytest.mark.slow


def _arm_random_fault(server: DevServer, rng: random.Random) -> None:
    kind = rng.choice(["5xx", "429", "408", "slow", "drop", "drop_after"])
    if kind == "5xx":
        server.fail_next(1, status=rng.choice([500, 502, 503, 504]))
    elif kind == "429":
        server.fail_next(1, status=429, retry_after=0.05)
    elif kind == "408":
        server.fail_next(1, status=408)
    elif kind == "slow":
        server.delay_next(1, seconds=0.6)  # past the 0.3 s request timeout
    elif kind == "drop":
        server.drop_next(1)
    else:
        server.drop_next(1, after_processing=True)


def test_random_faults_lose_nothing(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """5xx, 429, 408, slow answers and dropped connections: every event arrives."""
    rng = random.Random(1234)
    client = make_client(batch_size=50, timeout=0.3, retry_deadline=30)
    done = threading.Event()
    armed = 0

    def arm_faults() -> None:
        # One fault every third request, as requests happen (3,000 events make
        # at least 30 requests, however full the senders make them).
        nonlocal armed
        next_at = 0
        while not done.wait(0.005):
            if server.request_count >= next_at:
                _arm_random_fault(server, rng)
                armed += 1
                next_at = server.request_count + 3

    armer = threading.Thread(target=arm_faults)
    armer.start()
    try:
        sent = [client.track(name="faulty_stream", properties={"i": i}) for i in range(3000)]
        assert client.flush(timeout=60).success
    finally:
        done.set()
        armer.join()
        server.clear_faults()
    assert all(r.success for r in sent)
    score = scoreboard.record(
        "random 5xx/429/408/slow/dropped answers",
        (r.event_id or "" for r in sent),
        server,
        note=f"{armed} faults, one per ~3 requests",
    )
    assert score.lost == 0
    assert armed >= 8
    assert duplicates_come_from_lost_answers(server)
    assert client.stats().undelivered == {}


def test_short_full_outage_loses_nothing(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """An outage shorter than the retry deadline delays events but loses none."""
    client = make_client(batch_size=20, max_queue_size=2000, retry_deadline=20)
    outage_over = threading.Timer(1.0, server.set_outage, args=(None,))
    server.set_outage(503)
    outage_over.start()
    try:
        sent = [client.track(name="outage", properties={"i": i}) for i in range(1500)]
        assert client.flush(timeout=30).success
    finally:
        outage_over.cancel()
        server.set_outage(None)
    score = scoreboard.record(
        "full outage (1 s) shorter than the retry deadline",
        (r.event_id or "" for r in sent),
        server,
    )
    assert all(r.success for r in sent)
    assert (score.lost, score.duplicated) == (0, 0)


def test_outage_by_dropped_connections_loses_nothing(
    server: DevServer, make_client: MakeClient, scoreboard: Scoreboard
) -> None:
    """Connections closed without an answer during an outage are retried to success."""
    client = make_client(batch_size=20, retry_deadline=20)
    server.set_outage(0)
    timer = threading.Timer(0.5, server.set_outage, args=(None,))
    timer.start()
    try:
        sent = [client.track(name="dropped", properties={"i": i}) for i in range(500)]
        assert client.flush(timeout=30).success
    finally:
        timer.cancel()
        server.set_outage(None)
    score = scoreboard.record(
        "outage by dropped connections (0.5 s)", (r.event_id or "" for r in sent), server
    )
    assert (score.lost, score.duplicated) == (0, 0)
