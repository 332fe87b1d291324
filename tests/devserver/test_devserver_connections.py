"""Safe on a laptop: a cap on open connections, and a deadline for each request."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from databuddy_otel.devserver import DevServer

HEALTH = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def address(server: DevServer) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").rpartition(":")
    return host, int(port)


@contextlib.contextmanager
def idle_connections(server: DevServer, n: int) -> Iterator[list[socket.socket]]:
    """``n`` connections that send nothing; the server accepts them in order."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(socket.create_connection(address(server), timeout=5))
            for _ in range(n)
        ]


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def exchange(server: DevServer, data: bytes) -> bytes:
    with socket.create_connection(address(server), timeout=5) as sock:
        sock.sendall(data)
        return read_all(sock)


def handler_threads() -> set[threading.Thread]:
    """The server's connection threads (named after their target from Python 3.10 on)."""

    def serves(thread: threading.Thread) -> bool:
        target = getattr(thread, "_target", None)
        return "process_request_thread" in thread.name or (
            getattr(target, "__name__", "") == "process_request_thread"
        )

    return {t for t in threading.enumerate() if serves(t)}


# -- the cap --------------------------------------------------------------------------


def test_past_the_cap_a_connection_gets_an_immediate_503():
    """With max_connections open, the next connection gets 503, Retry-After: 1, and a close."""
    before = handler_threads()
    with DevServer(max_connections=4) as server, idle_connections(server, 4):
        started = time.monotonic()
        answer = exchange(server, HEALTH)
        assert time.monotonic() - started < 1
        # The four idle ones were accepted (and given threads) before it: none for it.
        assert len(handler_threads() - before) == 4
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    assert {"Retry-After: 1", "Connection: close", "Content-Type: application/json"} <= set(lines)
    assert f"Content-Length: {len(body)}" in lines
    error = json.loads(body)
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert "at most 4" in error["message"]


def test_a_closed_connection_frees_its_slot():
    """Once a connection closes, a new one is served again."""
    with DevServer(max_connections=2) as server, idle_connections(server, 2) as idle:
        assert b" 503 " in exchange(server, HEALTH)
        idle[0].close()
        deadline = time.monotonic() + 2
        while b" 503 " in (answer := exchange(server, HEALTH)) and time.monotonic() < deadline:
            pass  # the slot frees as soon as its thread sees the close
        assert answer.startswith(b"HTTP/1.1 200 ")


def test_the_default_cap_is_64():
    """DevServer() serves 64 connections at once and turns the 65th away."""
    with DevServer() as server, idle_connections(server, 63):
        assert exchange(server, HEALTH).startswith(b"HTTP/1.1 200 ")
        with idle_connections(server, 1):
            assert b" 503 " in exchange(server, HEALTH)


def test_requests_sees_the_503_of_a_full_server():
    """An HTTP client reads the turned-away answer (not a reset), even after a large body."""
    with DevServer(max_connections=1) as server, idle_connections(server, 1):
        for _ in range(20):
            response = requests.post(
                f"{server.url}/track",
                data=b"x" * 600_000,
                headers={"x-api-key": "k"},
                timeout=5,
            )
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
        assert server.request_count == 0  # turned away before anything was read


def test_a_viewer_stream_counts_toward_the_cap():
    """An open /stream holds one of the max_connections."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(DevServer(max_connections=1))
        stream = stack.enter_context(requests.get(f"{server.url}/stream", stream=True, timeout=5))
        assert stream.raw.read(5) == b"retry"
        assert b" 503 " in exchange(server, HEALTH)


# -- the request deadline -------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed():
    """A connection with no request within request_timeout is closed without an answer."""
    with DevServer(request_timeout=0.3) as server, idle_connections(server, 1) as (sock,):
        started = time.monotonic()
        assert read_all(sock) == b""
        assert 0.25 <= time.monotonic() - started < 1.5


def test_an_idle_keep_alive_connection_is_closed():
    """After an answer, the next request must come within request_timeout too."""
    with DevServer(request_timeout=0.3) as server, idle_connections(server, 1) as (sock,):
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert read_all(sock) == b""
        assert 0.25 <= time.monotonic() - started < 1.5


def test_a_request_that_stalls_mid_body_gets_408():
    """A request whose body stops coming is answered 408 and closed, counted nowhere."""
    with DevServer(request_timeout=0.3) as server, idle_connections(server, 1) as (sock,):
        server.fail_next()
        sock.sendall(
            b"POST /track HTTP/1.1\r\nHost: localhost\r\nx-api-key: k\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"name":'
        )
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"Connection: close" in answer
        assert b"Request not complete within 0.3s" in answer
        assert server.request_count == 0
        response = requests.post(
            f"{server.url}/track", json={"name": "e"}, headers={"x-api-key": "k"}, timeout=5
        )
        assert response.status_code == 503  # the armed fault was not used up


def test_a_client_dripping_header_bytes_is_cut_at_the_deadline():
    """A client sending its headers a byte at a time cannot outlast request_timeout."""
    with DevServer(request_timeout=0.3) as server, idle_connections(server, 1) as (sock,):
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        sock.settimeout(0.05)  # waiting for an answer paces the drip
        started = time.monotonic()
        answer = b""
        while not answer and time.monotonic() - started < 2:
            try:
                sock.sendall(b"X")
                answer = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 1


@pytest.mark.parametrize("trickle", [False, True], ids=["stream", "trickle"])
def test_long_answers_outlive_the_request_deadline(trickle):
    """The viewer's stream and a trickled answer go on past request_timeout."""
    with DevServer(request_timeout=0.2) as server:
        if trickle:
            server.trickle_next(interval=0.01)
            long = requests.post(
                f"{server.url}/track",
                json={"name": "slow"},
                headers={"x-api-key": "k"},
                timeout=5,
                stream=True,
            )
        else:
            long = requests.get(f"{server.url}/stream", stream=True, timeout=5)
        with long:
            long.raw.read(1)
            with idle_connections(server, 1) as (idle,):
                assert read_all(idle) == b""  # request_timeout has passed
            requests.post(
                f"{server.url}/track",
                json={"name": "later"},
                headers={"x-api-key": "k"},
                timeout=5,
            )
            data = long.raw.read(16)
            assert len(data) == 16
            if not trickle:
                while b'"later"' not in data:
                    data += long.raw.read1(65536)
