"""Retries: what is retried, for how long, and what is reported when it gives up."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from databuddy_otel import Undelivered
from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(
    server: DevServer, make_client: MakeClient, status: int
) -> None:
    """Transient statuses are retried until the event is delivered, id and timestamp unchanged."""
    client = make_client(enable_batching=False)
    server.fail_next(2, status=status)
    resp = client.track(name="e", timestamp=1_700_000_000_000)
    assert resp.success
    [event] = server.events()
    assert event["eventId"] == resp.event_id and event["timestamp"] == 1_700_000_000_000
    assert server.request_count == 3


def test_retry_after_is_honoured(server: DevServer, make_client: MakeClient) -> None:
    """A 429 with Retry-After waits about that long before the next attempt."""
    client = make_client(enable_batching=False)
    server.fail_next(1, status=429, retry_after=0.5)
    start = time.monotonic()
    assert client.track(name="e").success
    assert time.monotonic() - start >= 0.45


def test_dropped_connection_is_retried(server: DevServer, make_client: MakeClient) -> None:
    """A connection closed without an answer is retried."""
    client = make_client(enable_batching=False)
    server.drop_next(1)
    assert client.track(name="e").success
    assert len(server.events()) == 1


def test_timeout_is_retried(server: DevServer, make_client: MakeClient) -> None:
    """A response slower than the request timeout is retried (the server may double-count)."""
    client = make_client(enable_batching=False, timeout=0.2)
    server.delay_next(1, seconds=0.5)
    assert client.track(name="e").success
    events = server.wait_for_events(2)
    assert len({e["eventId"] for e in events}) == 1
    assert {e["requestId"] for e in events} & server.faulted_request_ids()


def test_client_errors_are_not_retried(server: DevServer, make_client: MakeClient) -> None:
    """A 4xx other than 408/425/429/413 fails at once with the server's message."""
    client = make_client(enable_batching=False)
    server.fail_next(1, status=401)
    resp = client.track(name="e")
    assert not resp.success and resp.error and resp.error.startswith("HTTP 401")
    assert server.request_count == 1


def test_413_splits_the_batch(server: DevServer, make_client: MakeClient) -> None:
    """A 413 splits the batch in halves, and every event still arrives."""
    client = make_client(batch_size=8, batch_timeout=60_000)
    server.fail_next(1, status=413)
    for i in range(8):
        client.track(name="e", properties={"i": i})
    assert client.flush().processed == 8
    assert len(server.events()) == 8
    assert server.request_count == 3


def test_outage_shorter_than_deadline_loses_nothing(
    server: DevServer, make_client: MakeClient
) -> None:
    """Events queued during a short outage are delivered once it ends."""
    client = make_client(batch_size=10, retry_deadline=10)
    server.set_outage(503)
    for i in range(30):
        client.track(name="e", properties={"i": i})
    time.sleep(0.3)
    server.set_outage(None)
    assert client.flush(timeout=10).success
    assert sorted(e["properties"]["i"] for e in server.events()) == list(range(30))


def test_giving_up_is_counted_and_reported(server: DevServer, make_client: MakeClient) -> None:
    """Past the retry deadline, events are counted and handed to on_undelivered."""
    lost: list[Undelivered] = []
    client = make_client(retry_deadline=0.5, on_undelivered=lost.extend)
    server.set_outage(503)
    ids = {client.track(name="e").event_id for _ in range(3)}
    client.flush(timeout=5)
    assert {u.event_id for u in lost} == ids
    assert {u.reason for u in lost} == {"retries_exhausted"}
    assert client.stats().undelivered == {"retries_exhausted": 3}
    server.set_outage(None)
    assert client.track(name="after").success
    client.flush()
    assert [e["name"] for e in server.events()] == ["after"]


def test_a_refused_connection_is_announced_at_the_first_attempt(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal is no blip: the WARNING with the address comes with the first attempt,
    not after the outage grace (a script that tracks once and exits sees it at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        client = make_client(api_url=f"http://127.0.0.1:{port}")
        caplog.set_level(logging.WARNING, logger="databuddy")
        client.track(name="nowhere")
        started = time.monotonic()
        client.flush(timeout=0.5)
        waited = time.monotonic() - started
    warnings = [r.getMessage() for r in caplog.records if "cannot reach" in r.getMessage()]
    assert len(warnings) == 1 and f"connection refused by 127.0.0.1:{port}" in warnings[0]
    assert waited < 1.0


def test_a_silent_server_gets_the_grace_before_it_is_announced(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A timed-out attempt may be a blip: no WARNING before the outage grace has passed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # accepts, never answers
        port = sock.getsockname()[1]
        client = make_client(api_url=f"http://127.0.0.1:{port}", timeout=0.2)
        caplog.set_level(logging.WARNING, logger="databuddy")
        client.track(name="quiet")
        client.flush(timeout=0.5)
        early = [r for r in caplog.records if "cannot reach" in r.getMessage()]
        client.flush(timeout=1.5)
    late = [r.getMessage() for r in caplog.records if "cannot reach" in r.getMessage()]
    assert early == []
    assert len(late) == 1 and ("no complete answer" in late[0] or "timed out" in late[0])


@pytest.mark.slow
def test_an_unreachable_server_is_announced_once_with_its_address(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The first outage warning names the URL and the cause, long before the exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        client = make_client(api_url=f"http://127.0.0.1:{port}", retry_deadline=2.5)
        caplog.set_level(logging.WARNING, logger="databuddy")
        client.track(name="nowhere")
        client.flush(timeout=3)
    warnings = [r.getMessage() for r in caplog.records if "cannot reach" in r.getMessage()]
    assert warnings == [
        f"Databuddy cannot reach http://127.0.0.1:{port} (Network request failed: connection"
        f" refused by 127.0.0.1:{port}); events wait and are retried: check api_url, the"
        " network and any proxy in between"
    ]
