"""DevServer's lifecycle, arguments, persistence and the SQLite store underneath."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest
import requests

import databuddy_otel.devserver as devserver
from databuddy_otel.devserver import DevServer
from databuddy_otel.devserver._store import LEGACY_DEDUP_WINDOW_MS, Store, StoreClosed
from databuddy_otel.devserver._validation import ValidEvent

KEY = {"x-api-key": "k"}


def track(server: DevServer, body: object) -> requests.Response:
    return requests.post(f"{server.url}/track", json=body, headers=KEY, timeout=10)


def test_exported_members():
    """The public API is exactly DevServer, listed in a sorted __all__."""
    assert devserver.__all__ == sorted(devserver.__all__) == ["DevServer"]


def test_with_block_starts_and_stops():
    """A with block serves inside and refuses connections after."""
    with DevServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert requests.get(f"{server.url}/health", timeout=5).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/health", timeout=5)


def test_stop_is_idempotent_and_start_is_once_only():
    """stop() may be called repeatedly (even before start); a server starts only once."""
    server = DevServer()
    server.stop()
    with pytest.raises(RuntimeError, match="create a new DevServer"):
        server.start()
    running = DevServer().start()
    with pytest.raises(RuntimeError, match="running server"):
        running.start()
    running.stop()
    running.stop()


def test_misuse_outside_the_running_phase_raises():
    """url/request_count before start, and events() after stop, raise RuntimeError."""
    server = DevServer()
    with pytest.raises(RuntimeError, match="after start"):
        _ = server.url
    with pytest.raises(RuntimeError, match="call start"):
        server.events()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.request_count
    server.start().stop()
    with pytest.raises(RuntimeError, match="stopped"):
        server.events()


def test_counters_outlive_stop():
    """request_count and faulted_request_ids can be read after the with block."""
    with DevServer() as server:
        server.drop_next(after_processing=True)
        with pytest.raises(requests.ConnectionError):
            track(server, {"name": "a"})
    assert server.request_count == 1
    assert server.faulted_request_ids() == {1}


def test_stop_closes_idle_keep_alive_connections():
    """stop() ends connections a client kept open, instead of leaving threads behind."""
    server = DevServer().start()
    with requests.Session() as session:
        assert session.get(f"{server.url}/health", timeout=5).ok
        server.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(f"{server.url}/health", timeout=5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"host": ""}, ValueError, "host must be"),
        ({"port": -1}, ValueError, "port must be"),
        ({"port": "8910"}, ValueError, "port must be"),
        ({"db": ""}, ValueError, "db must be"),
        ({"client_ids": "site"}, TypeError, "wrap 'site' in a list"),
        ({"api_keys": ["ok", ""]}, ValueError, "api_keys must hold non-empty strings"),
        ({"allowed_hosts": "devbox"}, TypeError, "wrap 'devbox' in a list"),
        ({"allowed_hosts": ["http://devbox"]}, ValueError, "allowed_hosts entries are host"),
        ({"allowed_hosts": ["devbox:99999"]}, ValueError, "allowed_hosts entries are host"),
        ({"max_connections": 0}, ValueError, "max_connections must be an int >= 1"),
        ({"max_connections": 2.5}, ValueError, "max_connections must be an int >= 1"),
        ({"request_timeout": 0}, ValueError, "request_timeout must be a finite number > 0"),
        ({"request_timeout": "10"}, ValueError, "request_timeout must be a number"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs, error, message):
    """Constructor arguments are checked at once, with a message naming the argument."""
    with pytest.raises(error, match=message):
        DevServer(**kwargs)


def test_busy_port_raises_oserror():
    """start() on a port already in use raises OSError and leaks nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = DevServer(port=taken.getsockname()[1])
        with pytest.raises(OSError):
            server.start()


def test_empty_lists_accept_everything():
    """Empty client_ids/api_keys mean no restriction, like omitting them."""
    with DevServer(client_ids=[], api_keys=()) as server:
        assert track(server, {"name": "a", "websiteId": "any"}).status_code == 200


def test_ipv6_loopback():
    """An IPv6 host is bound and bracketed in the url."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = DevServer(host="::1").start()
    except OSError:
        pytest.skip("IPv6 loopback unavailable")
    with server:
        assert server.url.startswith("http://[::1]:")
        assert requests.get(f"{server.url}/health", timeout=5).ok


def test_file_database_persists_across_restarts(tmp_path):
    """Events in a file database survive a restart; request ids keep increasing."""
    db = str(tmp_path / "events.sqlite3")
    with DevServer(db=db) as first:
        track(first, [{"name": "before", "eventId": "1"}, {"name": "before", "eventId": "2"}])
    with DevServer(db=db) as second:
        assert [e["eventId"] for e in second.events()] == ["1", "2"]
        track(second, {"name": "after"})
        events = second.events()
        assert [e["name"] for e in events] == ["before", "before", "after"]
        assert events[2]["requestId"] > events[0]["requestId"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_legacy_dedup_persists_across_restarts(tmp_path):
    """A legacy eventId seen before a restart is still a duplicate after it."""
    db = str(tmp_path / "events.sqlite3")
    event = {"type": "custom", "name": "x", "eventId": "same"}
    for _ in range(2):
        with DevServer(db=db) as server:
            requests.post(f"{server.url}/?client_id=c", json=event, timeout=10)
            assert len(server.events()) == 1


def test_wait_for_events_returns_at_count_and_filters(databuddy_server):
    """wait_for_events returns all stored events once the count is reached."""
    track(databuddy_server, [{"name": "a"}, {"name": "b"}, {"name": "a"}])
    assert len(databuddy_server.wait_for_events(2)) == 3
    assert [e["name"] for e in databuddy_server.wait_for_events(2, name="a")] == ["a", "a"]


def test_wait_for_events_times_out_with_counts(databuddy_server):
    """On timeout wait_for_events raises AssertionError saying what it got."""
    track(databuddy_server, {"name": "a"})
    with pytest.raises(AssertionError, match=r"at least 2 events named 'a' within 0.05s, got 1"):
        databuddy_server.wait_for_events(2, timeout=0.05, name="a")


def test_clear_empties_the_store(databuddy_server):
    """clear() deletes every event."""
    track(databuddy_server, {"name": "a"})
    databuddy_server.clear()
    assert databuddy_server.events() == []


def event(name: str = "e", event_id: str | None = None, website_id: str = "w") -> ValidEvent:
    return ValidEvent(
        name=name, timestamp=1, properties={}, event_id=event_id, website_id=website_id
    )


def test_store_dedup_window_is_24_hours():
    """A legacy eventId is a duplicate within 24 h and new again after."""
    store = Store(":memory:")

    def add(at: int) -> list[bool]:
        return store.add(
            [event(event_id="x")], protocol="legacy", request_id=1, received_at=at, dedup=True
        )

    try:
        assert add(0) == [True]
        assert add(LEGACY_DEDUP_WINDOW_MS - 1) == [False]
        assert add(LEGACY_DEDUP_WINDOW_MS + 1) == [True]
        assert store.count() == 2
    finally:
        store.close()


def test_store_refuses_use_after_close():
    """After close() the store raises StoreClosed; close() is idempotent."""
    store = Store(":memory:")
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.events()


def test_reading_fifty_thousand_events_is_quick():
    """events() on 50k stored events takes well under a second or two."""
    store = Store(":memory:")
    try:
        batch = [event(f"n{i % 3}") for i in range(100)]
        for request_id in range(500):
            store.add(batch, protocol="track", request_id=request_id, received_at=0)
        started = time.monotonic()
        assert len(store.events()) == 50_000
        assert store.count("n1") == len(store.events("n1")) == 16_500
        assert time.monotonic() - started < 3
    finally:
        store.close()
