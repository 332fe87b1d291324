"""Batching: batch_size, batch_timeout, flush() and batch()."""

from __future__ import annotations

from typing import Any

import pytest

from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def test_full_batch_is_sent_without_flush(server: DevServer, make_client: MakeClient) -> None:
    """Reaching batch_size wakes the worker; no flush needed."""
    client = make_client(batch_size=5, batch_timeout=60_000)
    for i in range(5):
        client.track(name="e", properties={"i": i})
    events = server.wait_for_events(5)
    assert sorted(e["properties"]["i"] for e in events) == [0, 1, 2, 3, 4]


def test_partial_batch_is_sent_after_batch_timeout(
    server: DevServer, make_client: MakeClient
) -> None:
    """A partial batch leaves after batch_timeout milliseconds."""
    client = make_client(batch_size=100, batch_timeout=100)
    client.track(name="lonely")
    assert [e["name"] for e in server.wait_for_events(1)] == ["lonely"]


def test_batch_size_is_clamped_to_100(make_client: MakeClient) -> None:
    """batch_size above 100 is clamped to the per-request limit, and below 1 is refused."""
    assert make_client(batch_size=500).settings.batch_size == 100
    assert make_client(batch_size=1).settings.batch_size == 1


def test_flush_sends_partial_batch_and_counts(server: DevServer, make_client: MakeClient) -> None:
    """flush() sends what is queued at once and reports processed counts per event."""
    client = make_client(batch_size=100, batch_timeout=60_000)
    ids = [client.track(name="e", properties={"i": i}).event_id for i in range(7)]
    result = client.flush(timeout=5)
    assert result.success and result.processed == 7
    assert sorted(r.event_id for r in result.results) == sorted(ids)  # type: ignore[type-var]
    assert len(server.events()) == 7


def test_flush_on_empty_queue_sends_no_request(server: DevServer, make_client: MakeClient) -> None:
    """flush() with nothing queued returns success, 0 processed, and makes no request."""
    client = make_client()
    result = client.flush()
    assert (result.success, result.processed, result.results) == (True, 0, [])
    assert server.request_count == 0


def test_flush_is_bounded_and_keeps_events(server: DevServer, make_client: MakeClient) -> None:
    """A flush that runs out of time says so; the events still arrive afterwards."""
    client = make_client(batch_size=100, batch_timeout=60_000, retry_deadline=10)
    server.delay_next(1, seconds=1.0)
    client.track(name="slow")
    result = client.flush(timeout=0.2)
    assert not result.success
    assert result.error and "timed out" in result.error
    assert [e["name"] for e in server.wait_for_events(1)] == ["slow"]


def test_batch_sends_now_in_one_request(server: DevServer, make_client: MakeClient) -> None:
    """batch() sends up to 100 events immediately and reports each."""
    client = make_client()
    result = client.batch(
        [
            {"type": "custom", "name": "e1", "properties": {"foo": "bar"}},
            {"type": "custom", "name": "e2", "anonymousId": "anon_1", "sessionId": "sess_1"},
        ]
    )
    assert result.success and result.processed == 2
    assert [r.success for r in result.results] == [True, True]
    assert sorted(e["name"] for e in server.events()) == ["e1", "e2"]
    assert server.request_count == 1


def test_batch_with_legacy_protocol(server: DevServer, make_client: MakeClient) -> None:
    """batch() on the legacy generation posts to /batch and reads per-event results."""
    client = make_client(protocol="legacy")
    result = client.batch([{"name": "a"}, {"name": "b"}])
    assert result.success and result.processed == 2
    assert {e["protocol"] for e in server.events()} == {"legacy"}


def test_batch_argument_errors_use_node_messages(make_client: MakeClient) -> None:
    """batch() refuses bad arguments with the Node SDK's messages, without raising."""
    client = make_client()
    assert client.batch("nope").error == "Events must be an array"  # type: ignore[arg-type]
    assert client.batch([]).error == "Events array cannot be empty"
    too_many = [{"name": "e"}] * 101
    assert client.batch(too_many).error == "Batch size cannot exceed 100 events"  # type: ignore[arg-type]
    assert client.batch([{"name": "ok"}, {"nope": 1}]).error == "All events must have a valid name"  # type: ignore[list-item]


def test_batch_reports_invalid_events_and_sends_the_rest(
    server: DevServer, make_client: MakeClient
) -> None:
    """An event over a limit fails alone; the valid ones of the batch are delivered."""
    client = make_client()
    result = client.batch([{"name": "ok"}, {"name": "x" * 300}])
    assert not result.success and result.processed == 1
    assert [r.success for r in result.results] == [True, False]
    assert [e["name"] for e in server.events()] == ["ok"]


def test_a_steady_stream_goes_out_in_few_full_requests(
    server: DevServer, make_client: MakeClient
) -> None:
    """At the default batch_size, 1,000 events a second for 0.6 s: the senders pace
    partial requests to at most ten a second, so a few requests carry them all
    (one per ten events would be 60), and flush() sends the rest at once."""
    import time

    client = make_client(batch_size=10)
    started = time.monotonic()
    for i in range(600):
        client.track(name="steady", properties={"i": i})
        time.sleep(max(0.0, started + (i + 1) / 1000 - time.monotonic()))
    assert client.flush(timeout=5).success
    assert sorted(e["properties"]["i"] for e in server.events()) == list(range(600))
    seconds = time.monotonic() - started
    assert server.request_count <= 10 * seconds + 6, (server.request_count, seconds)


def test_the_queue_worker_sleeps_while_the_senders_pace(
    server: DevServer, make_client: MakeClient
) -> None:
    """While partial requests wait for the pace, only a full request's worth wakes
    OpenTelemetry's worker: 600 events at 1,000 a second wake it a few times a
    second (two per request at most), not once per ten events (60 times)."""
    import time

    client = make_client(batch_size=10)
    batch = client._queue._batch  # type: ignore[union-attr]
    if not batch.seam:
        pytest.skip("this opentelemetry-sdk's public API wakes the worker itself")
    handed: list[float] = []
    on_batch = batch._drain._on_batch
    assert on_batch is not None

    def counting(items: Any) -> None:
        handed.append(time.monotonic())
        on_batch(items)

    batch._drain._on_batch = counting
    started = time.monotonic()
    for i in range(600):
        client.track(name="steady", properties={"i": i})
        time.sleep(max(0.0, started + (i + 1) / 1000 - time.monotonic()))
    seconds = time.monotonic() - started
    # One wake-up hands its batches over back to back: count the wake-ups.
    wakes = 1 + sum(1 for a, b in zip(handed, handed[1:]) if b - a > 0.003)
    assert client.flush(timeout=5).success
    assert sorted(e["properties"]["i"] for e in server.events()) == list(range(600))
    assert wakes <= 25 * seconds + 4, (wakes, seconds, len(handed))


def test_a_batch_held_back_by_the_pace_leaves_when_the_pace_ends(
    server: DevServer, make_client: MakeClient
) -> None:
    """A full batch that arrives while the pace holds the worker back leaves when
    the pace ends (0.1 s after the last request started), not at batch_timeout."""
    import time

    client = make_client(batch_size=2, batch_timeout=60_000)
    client.track(name="first")
    client.track(name="second")
    server.wait_for_events(2, timeout=2)
    started = time.monotonic()
    client.track(name="third")
    client.track(name="fourth")
    assert len(server.wait_for_events(4, timeout=3)) == 4
    assert time.monotonic() - started < 1.0


def test_an_event_after_a_quiet_spell_is_not_held_back(
    server: DevServer, make_client: MakeClient
) -> None:
    """Pacing only slows a stream: a full batch with no request in the last 0.1 s
    leaves at once (here well before a 60 s batch_timeout)."""
    import time

    client = make_client(batch_size=2, batch_timeout=60_000)
    client.track(name="first")
    client.track(name="second")
    server.wait_for_events(2, timeout=2)
    time.sleep(0.15)
    client.track(name="third")
    client.track(name="fourth")
    assert len(server.wait_for_events(4, timeout=2)) == 4
