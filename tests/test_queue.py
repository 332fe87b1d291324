"""A full queue: back-pressure while the server answers, counted refusals while it fails."""

from __future__ import annotations

import time

import pytest

from databuddy_otel import Undelivered
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def test_full_queue_applies_back_pressure_and_loses_nothing(
    server: DevServer, make_client: MakeClient
) -> None:
    """With the default policy a burst far larger than the queue is delivered whole."""
    client = make_client(batch_size=10, max_queue_size=20)
    responses = [client.track(name="burst", properties={"i": i}) for i in range(500)]
    assert all(r.success for r in responses)
    assert client.flush(timeout=10).success
    assert len(server.events()) == 500
    assert client.stats().undelivered == {}


def test_drop_policy_counts_every_drop(server: DevServer, make_client: MakeClient) -> None:
    """on_queue_full='drop' refuses events past capacity, reporting and counting each."""
    lost: list[Undelivered] = []
    client = make_client(
        batch_size=5, max_queue_size=5, on_queue_full="drop", on_undelivered=lost.extend
    )
    server.delay_next(1, seconds=0.5)
    responses = [client.track(name="e") for _ in range(40)]
    refused = [r for r in responses if not r.success]
    assert refused and all("queue full" in (r.error or "") for r in refused)
    client.flush(timeout=5)
    assert client.stats().undelivered == {"queue_full": len(refused)}
    assert {u.event_id for u in lost} == {r.event_id for r in refused}
    assert len(server.events()) == 40 - len(refused)


@pytest.mark.slow
def test_outage_does_not_block_the_caller(server: DevServer, make_client: MakeClient) -> None:
    """While the server is unreachable, a full queue refuses at once instead of stalling track()."""
    client = make_client(batch_size=5, max_queue_size=10, retry_deadline=5, timeout=1)
    server.set_outage(0)  # connections dropped without an answer
    client.track(name="first")
    deadline = time.monotonic() + 5
    while client.stats().reachable and time.monotonic() < deadline:
        time.sleep(0.01)
    start = time.monotonic()
    responses = [client.track(name="e") for _ in range(50)]
    elapsed = time.monotonic() - start
    assert elapsed < 0.5
    assert sum(not r.success for r in responses) >= 40
    assert client.stats().undelivered["queue_full"] >= 40
    server.set_outage(None)
    assert client.flush(timeout=10).success
    assert client.track(name="back").success
    client.flush()
    assert "back" in {e["name"] for e in server.events()}
