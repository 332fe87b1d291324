"""Hostile answers staged on purpose: reply_next (a proxy's answer) and trickle_next."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import requests

from databuddy_otel.devserver import DevServer

KEY = {"x-api-key": "k"}
EVENT = json.dumps({"name": "e"})
#: The Content-Length a trickled answer declares (docs/devserver.md), pinned here.
TRICKLE_BODY_BYTES = 1_048_576


def address(server: DevServer) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").rpartition(":")
    return host, int(port)


@contextlib.contextmanager
def post(server: DevServer, *, timeout: float = 5) -> Iterator[http.client.HTTPResponse]:
    """POST one event to /track with http.client (which follows no redirects)."""
    conn = http.client.HTTPConnection(*address(server), timeout=timeout)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(conn.close)
        conn.request("POST", "/track", EVENT, {"Content-Type": "application/json", **KEY})
        response = cleanup.enter_context(conn.getresponse())  # it holds the socket too
        yield response


def track(server: DevServer, name: str = "e") -> requests.Response:
    return requests.post(f"{server.url}/track", json={"name": name}, headers=KEY, timeout=5)


# -- reply_next -----------------------------------------------------------------------


def test_reply_next_sends_a_captive_portal_page_and_stores_nothing(databuddy_server):
    """reply_next() answers an HTML 200 verbatim, stores nothing and keeps an injected refusal."""
    page = "<html><body>Sign in to the café Wi-Fi</body></html>"
    databuddy_server.reply_next(body=page)
    with post(databuddy_server) as response:
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/html; charset=utf-8"
        assert response.read() == page.encode("utf-8")
    assert databuddy_server.events() == []
    assert databuddy_server.request_count == 1
    (refusal,) = databuddy_server.rejections()
    assert (refusal["status"], refusal["injected"]) == (200, "reply_next")
    assert refusal["message"].startswith("Staged answer 200 OK: 52 bytes of text/html")
    assert refusal["body"] == EVENT
    assert track(databuddy_server).status_code == 200  # only the next request


def test_reply_next_can_send_an_empty_200_without_content_type(databuddy_server):
    """content_type=None and an empty body give a bare 200 with Content-Length: 0."""
    databuddy_server.reply_next(content_type=None)
    with post(databuddy_server) as response:
        assert (response.status, response.read()) == (200, b"")
        assert response.getheader("Content-Type") is None
        assert response.getheader("Content-Length") == "0"


@pytest.mark.parametrize("status", [302, 308])
def test_reply_next_sends_a_redirect_with_its_location(databuddy_server, status):
    """A redirect goes out with the Location header given, and counts n requests."""
    location = "http://portal.example/login?from=/track"
    databuddy_server.reply_next(2, status=status, headers={"Location": location})
    for _ in range(2):
        with post(databuddy_server) as response:
            assert response.status == status
            assert response.getheader("Location") == location
    with post(databuddy_server) as response:
        assert response.status == 200
    assert [r["injected"] for r in databuddy_server.rejections()] == ["reply_next"] * 2


def test_reply_next_size_repeats_the_body(databuddy_server):
    """size makes the body exactly that long by repeating body, cut mid-way if need be."""
    databuddy_server.reply_next(body=b"abc", size=10, content_type="text/plain")
    with post(databuddy_server) as response:
        assert response.getheader("Content-Length") == "10"
        assert response.read() == b"abcabcabca"


def test_a_400_mb_reply_is_streamed_without_holding_it(databuddy_server):
    """A 400 MB body arrives whole while the process never holds more than a few MB."""
    size = 400 * 1024 * 1024
    databuddy_server.reply_next(size=size)
    tracemalloc.start()
    try:
        with post(databuddy_server, timeout=10) as response:
            assert response.getheader("Content-Length") == str(size)
            received = 0
            first = b""
            while chunk := response.read(1 << 20):
                first = first or chunk[:8]
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert first == b" " * 8  # an empty body is repeated as spaces
    assert peak < 16 * 1024 * 1024


def test_a_client_leaving_mid_reply_leaves_the_server_healthy(databuddy_server):
    """A client that hangs up during a huge reply does not break the server."""
    databuddy_server.reply_next(size=1 << 30)
    with post(databuddy_server) as response:
        response.read(4096)
    assert requests.get(f"{databuddy_server.url}/health", timeout=5).status_code == 200


def test_stop_cuts_a_huge_reply_nobody_reads():
    """stop() returns promptly while a 1 GB reply waits for a client that does not read."""
    server = DevServer().start()
    server.reply_next(size=1 << 30)
    with post(server):  # the head read, the body left on the socket
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"status": 199}, ValueError, "status must be an HTTP status code in 200..599"),
        ({"status": 600}, ValueError, "status must be an HTTP status code in 200..599"),
        ({"body": 5}, TypeError, "body must be bytes or str"),
        ({"size": -1}, ValueError, "size must be a number of bytes >= 0"),
        ({"status": 204, "body": "x"}, ValueError, "a 204 answer has no body"),
        ({"headers": {"Content-Length": "3"}}, ValueError, "with the size argument"),
        ({"headers": {"Content-Type": "a/b"}}, ValueError, "with the content_type argument"),
        ({"headers": {"X-A": "1\r\nX-B: 2"}}, ValueError, "without line breaks"),
        ({"headers": {"Bad Name": "1"}}, ValueError, "is not an HTTP header name"),
        ({"content_type": "text/html\n"}, ValueError, "content_type must be an ASCII string"),
    ],
)
def test_reply_next_arguments_are_checked(databuddy_server, kwargs, error, message):
    """Bad reply_next arguments raise at the call, naming the argument."""
    with pytest.raises(error, match=message):
        databuddy_server.reply_next(**kwargs)


# -- trickle_next ---------------------------------------------------------------------


def test_trickle_next_stores_then_answers_one_byte_at_a_time(databuddy_server):
    """trickle_next() stores the events, sends the head, then the body a byte per interval."""
    databuddy_server.trickle_next(interval=0.05)
    started = time.monotonic()
    with post(databuddy_server) as response:
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("Content-Length") == str(TRICKLE_BODY_BYTES)
        assert response.read(4) == b'{"st'  # the usual answer, one byte per interval
        assert time.monotonic() - started >= 3 * 0.05
    (event,) = databuddy_server.events()
    assert databuddy_server.faulted_request_ids() == {event["requestId"]}
    assert databuddy_server.rejections() == []
    assert track(databuddy_server).status_code == 200


def test_trickle_next_without_store_stores_nothing(databuddy_server):
    """trickle_next(store=False) stores nothing, trickles {} and keeps an injected refusal."""
    databuddy_server.trickle_next(interval=0.01, store=False)
    with post(databuddy_server) as response:
        assert response.read(4) == b"{}  "
    assert databuddy_server.events() == []
    (refusal,) = databuddy_server.rejections()
    assert (refusal["status"], refusal["injected"]) == (200, "trickle_next")
    assert "nothing stored" in refusal["message"]


def test_trickle_next_headers_too_trickles_the_status_line(databuddy_server):
    """With headers_too the status line itself arrives one byte at a time."""
    databuddy_server.trickle_next(interval=0.05, headers_too=True)
    request = (
        b"POST /track HTTP/1.1\r\nHost: localhost\r\nx-api-key: k\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    ) % (len(EVENT), EVENT.encode())
    with socket.create_connection(address(databuddy_server), timeout=5) as sock:
        sock.sendall(request)
        databuddy_server.wait_for_events(1)
        pieces = [sock.recv(100) for _ in range(4)]
    assert pieces == [b"H", b"T", b"T", b"P"]


def test_a_client_leaving_a_trickle_frees_its_connection():
    """A client that gives up on a trickled answer frees its slot at once."""
    with DevServer(max_connections=1) as server:
        server.trickle_next(interval=0.05)
        with post(server) as response:  # a read timeout never fires: bytes keep coming
            assert response.read(2) == b'{"'
        deadline = time.monotonic() + 2
        while (status := track(server).status_code) == 503 and time.monotonic() < deadline:
            pass  # the slot is freed as soon as the handler notices the client left
        assert status == 200


def test_stop_does_not_wait_for_a_trickle():
    """stop() cuts a trickled answer with a long interval at once."""
    server = DevServer().start()
    server.trickle_next(interval=30, headers_too=True)
    ended: list[BaseException] = []

    def post_and_wait() -> None:
        try:
            with post(server, timeout=10):
                pass
        except (OSError, http.client.HTTPException) as exc:
            ended.append(exc)  # the head never arrived whole

    thread = threading.Thread(target=post_and_wait)
    thread.start()
    server.wait_for_events(1)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=5)
    assert time.monotonic() - started < 2
    assert not thread.is_alive()
    assert len(ended) == 1


@pytest.mark.parametrize("interval", [0, -1, float("inf"), float("nan"), "1"])
def test_trickle_next_interval_is_checked(databuddy_server, interval):
    """interval must be a finite number of seconds > 0."""
    with pytest.raises(ValueError, match="interval must be a"):
        databuddy_server.trickle_next(interval=interval)
