"""The event viewer's page (GET /) and its server-sent event stream (GET /stream), over HTTP."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from databuddy_otel.devserver import DevServer

KEY = {"x-api-key": "k"}
VIEWER_THREAD = "databuddy-devserver-viewer"


class EventStream:
    """A minimal server-sent events client on http.client, with a read timeout."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", "/stream")
        self.response = self.conn.getresponse()

    def next(self) -> dict[str, Any]:
        """The next message's JSON, skipping comments and the retry field."""
        data: list[str] = []
        while True:
            line = self.response.readline().decode("utf-8")
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith("data: "):
                data.append(line[len("data: ") :])
            elif line == "" and data:
                return json.loads("\n".join(data))

    def close(self) -> None:
        self.response.close()  # holds the socket open as long as it is open itself
        self.conn.close()


@contextmanager
def event_stream(server: DevServer) -> Iterator[EventStream]:
    stream = EventStream(server.url)
    try:
        yield stream
    finally:
        stream.close()


def track(server: DevServer, body: object) -> requests.Response:
    return requests.post(f"{server.url}/track", json=body, headers=KEY, timeout=10)


def viewer_threads() -> int:
    return sum(thread.name == VIEWER_THREAD for thread in threading.enumerate())


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.01)


def test_get_root_serves_the_page(databuddy_server):
    """GET / answers the HTML page with a strict Content-Security-Policy and its nonce."""
    response = requests.get(databuddy_server.url + "/", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce, policy
    assert f'<script nonce="{nonce.group(1)}">' in response.text
    assert "default-src 'none'" in policy and "img-src 'none'" in policy
    assert "__CSP_NONCE__" not in response.text
    assert databuddy_server.request_count == 0


def test_each_page_load_gets_a_fresh_nonce(databuddy_server):
    """Two loads of the page carry different nonces."""
    policies = {
        requests.get(databuddy_server.url, timeout=5).headers["Content-Security-Policy"]
        for _ in range(2)
    }
    assert len(policies) == 2


def test_head_root_sends_headers_only(databuddy_server):
    """HEAD / answers the page's headers with its length but no body."""
    response = requests.head(databuddy_server.url + "/", timeout=5)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) > 1000
    assert response.content == b""


def test_post_root_is_still_legacy_ingest(databuddy_server):
    """POST / keeps answering as the legacy single-event endpoint."""
    response = requests.post(
        f"{databuddy_server.url}/?client_id=c", json={"type": "custom", "name": "a"}, timeout=5
    )
    assert response.json()["type"] == "custom"
    assert [e["protocol"] for e in databuddy_server.events()] == ["legacy"]


def test_the_page_never_parses_data_as_markup():
    """The page's script builds nodes with textContent; no HTML-parsing sink appears at all."""
    source = resources.files("databuddy_otel.devserver").joinpath("viewer.html").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source
    assert not re.search(r"""(src|href)=["']https?:""", source), "the page loads nothing remote"


def test_stream_starts_with_a_snapshot(databuddy_server):
    """The first message holds the newest events first, the counts per name, and refusals."""
    track(databuddy_server, [{"name": "a"}, {"name": "b"}, {"name": "a"}])
    track(databuddy_server, {"name": ""})
    with event_stream(databuddy_server) as stream:
        assert stream.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        snapshot = stream.next()
    assert snapshot["kind"] == "snapshot"
    assert [e["name"] for e in snapshot["events"]] == ["a", "b", "a"]
    assert snapshot["events"][0] == databuddy_server.events()[-1]
    assert snapshot["counts"] == {"a": 2, "b": 1}
    assert snapshot["refusals"] == databuddy_server.rejections()


def test_stream_pushes_events_refusals_and_clearing(databuddy_server):
    """After the snapshot come stored events (newest first), refusals and clearings."""
    with event_stream(databuddy_server) as stream:
        assert stream.next()["events"] == []
        track(databuddy_server, [{"name": "first"}, {"name": "second"}])
        events = stream.next()
        assert events["kind"] == "events"
        assert [e["name"] for e in events["events"]] == ["second", "first"]
        assert events["events"][1] == databuddy_server.events()[0]
        track(databuddy_server, {"name": "x" * 300})
        refusal = stream.next()
        assert refusal["kind"] == "refusal"
        assert refusal["refusal"] == databuddy_server.rejections()[0]
        requests.delete(f"{databuddy_server.url}/events", timeout=5)
        cleared = stream.next()
        assert (cleared["kind"], cleared["deleted"]) == ("cleared", 2)


def test_a_viewer_joining_during_ingest_sees_each_event_once(databuddy_server):
    """Snapshot plus pushes hold every event exactly once, however they interleave."""
    total = 60
    posting = threading.Thread(
        target=lambda: [track(databuddy_server, {"name": f"e{i}"}) for i in range(total)]
    )
    posting.start()
    try:
        with event_stream(databuddy_server) as stream:
            seen = [e["name"] for e in stream.next()["events"]]
            while len(seen) < total:
                seen += [e["name"] for e in stream.next()["events"]]
    finally:
        posting.join()
    assert sorted(seen) == sorted(f"e{i}" for i in range(total))


def test_stop_returns_promptly_with_viewers_connected():
    """stop() ends open streams at once instead of waiting for their heartbeats."""
    server = DevServer().start()
    streams = [EventStream(server.url) for _ in range(3)]
    for stream in streams:
        stream.next()
    wait_until(lambda: viewer_threads() == 3)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    for stream in streams:
        with pytest.raises(EOFError):
            stream.next()
        stream.close()
    wait_until(lambda: viewer_threads() == 0)


def test_a_viewer_that_goes_away_frees_its_thread(databuddy_server):
    """Closing the browser's connection ends the stream's thread; ingest carries on."""
    before = viewer_threads()
    stream = EventStream(databuddy_server.url)
    stream.next()
    wait_until(lambda: viewer_threads() == before + 1)
    stream.close()
    wait_until(lambda: viewer_threads() == before, timeout=3.0)
    assert track(databuddy_server, {"name": "after"}).status_code == 200
    assert [e["name"] for e in databuddy_server.events()] == ["after"]


def test_a_viewer_that_never_reads_does_not_hold_up_ingest(databuddy_server):
    """Ingest answers promptly while a connected viewer reads nothing at all."""
    stream = EventStream(databuddy_server.url)  # headers read, the body never
    try:
        properties = {"blob": "b" * 30_000}
        with requests.Session() as session:
            started = time.monotonic()
            for _ in range(150):  # about 4.5 MB pushed at a viewer that reads none of it
                response = session.post(
                    f"{databuddy_server.url}/track",
                    json={"name": "big", "properties": properties},
                    headers=KEY,
                    timeout=5,
                )
                assert response.status_code == 200
        assert time.monotonic() - started < 20
        assert len(databuddy_server.events("big")) == 150
    finally:
        stream.close()
