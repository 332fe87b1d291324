"""The HTTP transport: one total deadline per request, a bounded answer, named causes."""

from __future__ import annotations

import socket
import time

import pytest

from databuddy_otel._wire.transport import MAX_ANSWER_BYTES, RequestsTransport
from databuddy_otel.devserver import DevServer
from databuddy_otel.models import TransportError

HEADERS = {"Content-Type": "application/json"}


@pytest.mark.slow
@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "status-and-headers"])
def test_a_trickling_answer_is_cut_at_the_total_deadline(
    server: DevServer, headers_too: bool
) -> None:
    """A byte every 0.2 s never trips a per-read timeout; the total deadline still holds."""
    server.trickle_next(1, interval=0.2, store=False, headers_too=headers_too)
    transport = RequestsTransport()
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"no complete answer within 1\.5s"):
        transport.post(f"{server.url}/batch", b"[]", HEADERS, 1.5)
    assert 1.4 <= time.monotonic() - started <= 2.0
    # The transport goes on working: the next request uses a fresh connection.
    assert transport.post(f"{server.url}/batch", b"[]", HEADERS, 5.0).status == 200
    transport.close()


def test_only_the_start_of_a_huge_answer_is_read(server: DevServer) -> None:
    """A 50 MB body: the answer carries its first 64 KiB, and the request ends quickly."""
    server.reply_next(1, status=200, body="<p>", size=50_000_000)
    transport = RequestsTransport()
    started = time.monotonic()
    answer = transport.post(f"{server.url}/batch", b"[]", HEADERS, 10.0)
    assert answer.status == 200
    assert len(answer.text) == MAX_ANSWER_BYTES
    assert answer.text.startswith("<p><p>")
    assert time.monotonic() - started < 5.0
    transport.close()


def test_a_refused_connection_names_the_cause_and_the_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        transport = RequestsTransport()
        with pytest.raises(TransportError) as caught:
            transport.post(f"http://127.0.0.1:{port}/batch", b"[]", HEADERS, 2.0)
    assert str(caught.value) == f"Network request failed: connection refused by 127.0.0.1:{port}"
