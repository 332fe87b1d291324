"""Deduplication by caller-chosen eventId, without the Node SDK's defects."""

from __future__ import annotations

from databuddy_otel.devserver import DevServer
from tests.conftest import MakeClient


def test_queued_event_with_id_is_delivered(server: DevServer, make_client: MakeClient) -> None:
    """An event carrying its own eventId is sent, not dropped as its own duplicate."""
    client = make_client()
    client.track(name="order", event_id="ord-1")
    assert client.flush().processed == 1
    assert [e["eventId"] for e in server.events()] == ["ord-1"]


def test_repeated_id_is_sent_once(server: DevServer, make_client: MakeClient) -> None:
    """The same eventId tracked twice (queued or delivered) reaches the server once."""
    client = make_client()
    first = client.track(name="order", event_id="ord-2")
    second = client.track(name="order", event_id="ord-2")
    client.flush()
    third = client.track(name="order", event_id="ord-2")
    client.flush()
    assert first.success and second.success and third.success
    assert len(server.events()) == 1
    assert client.stats().deduplicated == 2


def test_id_of_undelivered_event_is_not_remembered(
    server: DevServer, make_client: MakeClient
) -> None:
    """An id is remembered only once delivered: a failed event can be tracked again."""
    client = make_client(enable_batching=False)
    server.fail_next(1, status=400)
    assert not client.track(name="order", event_id="ord-3").success
    assert client.track(name="order", event_id="ord-3").success
    assert [e["eventId"] for e in server.events()] == ["ord-3"]


def test_dedup_cache_is_fifo_bounded(server: DevServer, make_client: MakeClient) -> None:
    """Past max_deduplication_cache_size the oldest ids are forgotten."""
    client = make_client(max_deduplication_cache_size=2)
    for event_id in ("a", "b", "c"):
        client.track(name="e", event_id=event_id)
    client.flush()
    client.track(name="e", event_id="a")
    client.track(name="e", event_id="c")
    client.flush()
    assert sorted(e["eventId"] for e in server.events()) == ["a", "a", "b", "c"]


def test_deduplication_can_be_turned_off(server: DevServer, make_client: MakeClient) -> None:
    """enable_deduplication=False sends every event."""
    client = make_client(enable_deduplication=False)
    client.track(name="e", event_id="same")
    client.track(name="e", event_id="same")
    client.flush()
    assert len(server.events()) == 2
