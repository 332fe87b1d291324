"""The dev server's HTTP plumbing: inspection endpoints, methods, limits, hostile input."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from databuddy_otel.devserver import DevServer

KEY = {"x-api-key": "k"}
#: The basket server's body limit (docs/protocol.md), pinned here rather than imported.
MAX_BODY_BYTES = 1_048_576


def track(server: DevServer, body: object) -> requests.Response:
    return requests.post(f"{server.url}/track", json=body, headers=KEY, timeout=10)


def address(server: DevServer) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").rpartition(":")
    return host, int(port)


def exchange(server: DevServer, data: bytes, *, half_close: bool = True) -> bytes:
    """Send raw bytes, then read whatever comes back until the server closes."""
    with socket.create_connection(address(server), timeout=5) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first on hostile input; that is fine
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return received


def assert_healthy(server: DevServer) -> None:
    response = requests.get(f"{server.url}/health", timeout=5)
    assert response.json() == {"status": "ok"}


def test_health(databuddy_server):
    """GET /health answers {"status":"ok"}."""
    response = requests.get(f"{databuddy_server.url}/health", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response.headers["Content-Type"] == "application/json"


def test_get_events_lists_oldest_first_and_filters_by_name(databuddy_server):
    """GET /events is the stored events oldest first; ?name= filters; it matches events()."""
    track(databuddy_server, [{"name": "a"}, {"name": "b"}])
    track(databuddy_server, {"name": "a", "eventId": "third"})
    everything = requests.get(f"{databuddy_server.url}/events", timeout=5).json()
    assert [e["name"] for e in everything] == ["a", "b", "a"]
    assert everything == databuddy_server.events()
    named = requests.get(f"{databuddy_server.url}/events", params={"name": "a"}, timeout=5)
    assert [e["eventId"] for e in named.json()] == [None, "third"]
    assert named.json() == databuddy_server.events("a")


def test_delete_events_clears_the_store(databuddy_server):
    """DELETE /events removes everything and says how many went."""
    track(databuddy_server, [{"name": "a"}, {"name": "b"}])
    response = requests.delete(f"{databuddy_server.url}/events", timeout=5)
    assert response.json() == {"status": "success", "deleted": 2}
    assert databuddy_server.events() == []


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/track", "POST"),
        ("PUT", "/track", "POST"),
        ("PUT", "/", "GET, HEAD, POST"),
        ("POST", "/rejections", "GET"),
        ("DELETE", "/stream", "GET"),
        ("PATCH", "/batch", "POST"),
        ("POST", "/events", "DELETE, GET"),
        ("PUT", "/events", "DELETE, GET"),
        ("POST", "/health", "GET"),
        ("DELETE", "/health", "GET"),
        ("OPTIONS", "/track", "POST"),
    ],
)
def test_wrong_method_on_a_known_path_is_405(databuddy_server, method, path, allow):
    """A known path with the wrong method is 405 with Allow and a JSON body; never counted."""
    response = requests.request(method, databuddy_server.url + path, data=b"{}", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert databuddy_server.request_count == 0


def test_head_gets_headers_only(databuddy_server):
    """HEAD is answered 405 with a Content-Length but no body, keeping the connection usable."""
    response = requests.head(f"{databuddy_server.url}/health", timeout=5)
    assert response.status_code == 405
    assert response.content == b""


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("POST", "/track/extra")])
def test_unknown_path_is_404_json(databuddy_server, method, path):
    """Unknown paths are 404 with a JSON body and are not ingest requests."""
    response = requests.request(method, databuddy_server.url + path, json={}, timeout=5)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert databuddy_server.request_count == 0


def test_trailing_slash_is_the_same_route(databuddy_server):
    """/track/ is routed like /track."""
    response = requests.post(f"{databuddy_server.url}/track/", json={"name": "a"}, headers=KEY)
    assert response.status_code == 200


def test_body_of_exactly_one_mib_is_accepted(databuddy_server):
    """A body of exactly MAX_BODY_BYTES is within the limit."""
    body = b'{"name":"a"}'
    body += b" " * (MAX_BODY_BYTES - len(body))
    response = requests.post(f"{databuddy_server.url}/track", data=body, headers=KEY, timeout=10)
    assert response.status_code == 200


def test_body_over_one_mib_is_413(databuddy_server):
    """One byte over MAX_BODY_BYTES is 413 PAYLOAD_TOO_LARGE and the connection is closed."""
    body = b'{"name":"a"}'
    body += b" " * (MAX_BODY_BYTES + 1 - len(body))
    response = requests.post(f"{databuddy_server.url}/track", data=body, headers=KEY, timeout=10)
    assert response.status_code == 413
    assert response.json() == {
        "success": False,
        "status": "error",
        "error": "Payload too large",
        "message": "Payload too large",
        "code": "PAYLOAD_TOO_LARGE",
    }
    assert response.headers["Connection"] == "close"
    assert databuddy_server.events() == []


def test_huge_declared_length_is_refused_before_reading(databuddy_server):
    """A Content-Length of a terabyte is answered 413 at once, without waiting for the body."""
    head = b"POST /track HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000000\r\n\r\n"
    with socket.create_connection(address(databuddy_server), timeout=5) as sock:
        sock.sendall(head + b"[")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert_healthy(databuddy_server)


def chunks(total: int, size: int = 65536) -> Iterator[bytes]:
    yield b'{"name":"chunked"}'
    remaining = total - len(b'{"name":"chunked"}')
    while remaining > 0:
        yield b" " * min(size, remaining)
        remaining -= size


def test_chunked_body_is_accepted(databuddy_server):
    """A Transfer-Encoding: chunked body is read like a sized one."""
    url = f"{databuddy_server.url}/track"
    response = requests.post(url, data=chunks(200_000), headers=KEY, timeout=10)
    assert response.status_code == 200
    assert databuddy_server.events()[0]["name"] == "chunked"


def test_chunked_body_over_one_mib_is_413(databuddy_server):
    """A chunked body that grows past MAX_BODY_BYTES is 413 too."""
    url = f"{databuddy_server.url}/track"
    response = requests.post(url, data=chunks(MAX_BODY_BYTES + 70_000), headers=KEY, timeout=10)
    assert response.status_code == 413
    assert_healthy(databuddy_server)


def test_expect_100_continue_is_answered_at_once(databuddy_server):
    """A client sending Expect: 100-continue (as curl does) gets its go-ahead immediately."""
    body = b'{"name":"patient"}'
    head = b"POST /track HTTP/1.1\r\nHost: localhost\r\nx-api-key: k\r\nExpect: 100-continue\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection(address(databuddy_server), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert databuddy_server.events()[0]["name"] == "patient"


@pytest.mark.parametrize(
    "lengths",
    [[b"abc"], [b"-5"], [b"1e3"], [b"+5"], [b"5", b"6"], [b"\xd9\xa3"]],
)
def test_bad_content_length_is_400(databuddy_server, lengths):
    """An unusable Content-Length is 400 and the connection is closed; nothing stored."""
    head = b"POST /track HTTP/1.1\r\nHost: localhost\r\nx-api-key: k\r\n"
    head += b"".join(b"Content-Length: " + value + b"\r\n" for value in lengths)
    reply = exchange(databuddy_server, head + b'\r\n{"name":"a"}')
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in reply
    assert databuddy_server.events() == []
    assert_healthy(databuddy_server)


def test_truncated_body_is_400(databuddy_server):
    """A body shorter than its Content-Length (client half-closed) is 400, nothing stored."""
    head = b"POST /track HTTP/1.1\r\nHost: localhost\r\nx-api-key: k\r\nContent-Length: 100\r\n\r\n"
    reply = exchange(databuddy_server, head + b'{"name":"a"}')
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert databuddy_server.events() == []


def test_client_vanishing_mid_body_is_harmless(databuddy_server):
    """A client that resets the connection mid-body leaves the server healthy and empty."""
    head = (
        b"POST /track HTTP/1.1\r\nHost: localhost\r\nx-api-key: k\r\nContent-Length: 5000\r\n\r\n"
    )
    with socket.create_connection(address(databuddy_server), timeout=5) as sock:
        sock.sendall(head + b'{"name":')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    assert_healthy(databuddy_server)
    assert databuddy_server.events() == []


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff\xfe" * 100,
        b"GARBAGE\r\n\r\n",
        b"POST /track HTTP/9.9\r\n\r\n",
        b"POST /track HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
        b"POST /track HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /track HTTP/1.1\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
    ],
)
def test_garbage_bytes_do_not_hurt_the_server(databuddy_server, garbage):
    """Hostile bytes get an error or a closed connection; the server keeps serving."""
    reply = exchange(databuddy_server, garbage)
    assert reply == b"" or reply.startswith(b"HTTP/1.") or reply.startswith(b"{")
    assert_healthy(databuddy_server)


def test_random_bytes_never_break_the_server():
    """Hypothesis: arbitrary bytes, raw or after a request line, never stop the server."""
    prefixes = st.sampled_from(
        [b"", b"POST /track HTTP/1.1\r\n", b"POST /batch?client_id=c HTTP/1.1\r\n"]
    )
    with DevServer() as server:

        @given(prefix=prefixes, payload=st.binary(max_size=300))
        @settings(max_examples=60, deadline=None)
        def check(prefix: bytes, payload: bytes) -> None:
            exchange(server, prefix + payload)

        check()
        assert_healthy(server)


def test_keep_alive_serves_several_requests_on_one_connection(databuddy_server):
    """HTTP/1.1 keep-alive: three requests, one socket, every answer has Content-Length."""
    conn = http.client.HTTPConnection(*address(databuddy_server), timeout=5)
    try:
        sockets = []
        for name in ("a", "b", "c"):
            conn.request("POST", "/track", body=json.dumps({"name": name}), headers=KEY)
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Length") is not None
            response.read()
            sockets.append(conn.sock)
        assert sockets[0] is sockets[1] is sockets[2]
    finally:
        conn.close()
    assert [e["name"] for e in databuddy_server.events()] == ["a", "b", "c"]


def test_concurrent_clients_lose_nothing(databuddy_server):
    """Eight threads posting batches at once: every event stored, every request counted."""
    threads_n, requests_n, batch_n = 8, 20, 5
    failures: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            with requests.Session() as session:
                for r in range(requests_n):
                    batch = [
                        {"name": "load", "eventId": f"{thread}-{r}-{i}"} for i in range(batch_n)
                    ]
                    url = f"{databuddy_server.url}/track"
                    response = session.post(url, json=batch, headers=KEY, timeout=10)
                    assert response.status_code == 200
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    stored = databuddy_server.events("load")
    assert len({e["eventId"] for e in stored}) == len(stored) == threads_n * requests_n * batch_n
    assert len({e["requestId"] for e in stored}) == threads_n * requests_n
    assert databuddy_server.request_count == threads_n * requests_n


def test_only_ingest_requests_are_counted_and_numbered(databuddy_server):
    """request_count and requestId count POST /track, / and /batch, rejected ones included."""
    requests.get(f"{databuddy_server.url}/health", timeout=5)
    requests.get(f"{databuddy_server.url}/events", timeout=5)
    track(databuddy_server, {"name": ""})  # rejected, still request 1
    requests.post(f"{databuddy_server.url}/?client_id=c", json={"type": "custom", "name": "l"})
    requests.post(
        f"{databuddy_server.url}/batch?client_id=c", json=[{"type": "custom", "name": "b"}]
    )
    track(databuddy_server, {"name": "t"})
    assert databuddy_server.request_count == 4
    assert [(e["name"], e["requestId"]) for e in databuddy_server.events()] == [
        ("l", 2),
        ("b", 3),
        ("t", 4),
    ]


def test_requests_are_not_logged_to_stderr(databuddy_server, capfd):
    """The stdlib's per-request stderr lines are replaced by DEBUG logging."""
    track(databuddy_server, {"name": "quiet"})
    requests.get(f"{databuddy_server.url}/nope", timeout=5)
    exchange(databuddy_server, b"GARBAGE\r\n\r\n")
    assert capfd.readouterr().err == ""


def test_requests_are_logged_at_debug(databuddy_server, caplog):
    """Each request is logged to the databuddy.devserver logger at DEBUG."""
    caplog.set_level("DEBUG", logger="databuddy.devserver")
    track(databuddy_server, {"name": "logged"})
    assert any("POST /track" in r.getMessage() for r in caplog.records)
