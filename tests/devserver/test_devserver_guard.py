"""Safe on a laptop: the Host names the dev server answers to (no DNS rebinding) and
the cross-origin writes it refuses (no forged form posts from a web page)."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from databuddy_otel.devserver import DevServer

EVENT = json.dumps({"name": "e"}).encode()
JSON = "application/json"


def address(server: DevServer) -> tuple[str, int]:
    host, _, port = server.url.removeprefix("http://").rpartition(":")
    return host.strip("[]"), int(port)


def ask(
    server: DevServer,
    method: str,
    path: str,
    *,
    host: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request with exactly these headers; ``host`` replaces the Host header."""
    conn = http.client.HTTPConnection(*address(server), timeout=5)
    try:
        conn.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        response = conn.getresponse()
        # /stream does not end: its first bytes are enough.
        data = (
            response.read(1)
            if response.getheader("Content-Type", "").startswith("text/event-stream")
            else response.read()
        )
        return response.status, dict(response.getheaders()), data
    finally:
        conn.close()


def port_of(server: DevServer) -> int:
    return address(server)[1]


def track(
    server: DevServer, *, host: str | None = None, headers: dict[str, str] | None = None
) -> int:
    """POST one event to /track with the API key and these headers; the status."""
    sent = {"x-api-key": "k", **(headers or {})}
    return ask(server, "POST", "/track", host=host, headers=sent, body=EVENT)[0]


# -- Host -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:{port}",
        "LocalHost:{port}",
        "localhost.:{port}",
        "127.0.0.1",
        "127.0.0.1:{port}",
        "[::1]:{port}",
        "[0:0:0:0:0:0:0:1]",
    ],
)
def test_loopback_names_are_answered(databuddy_server, host):
    """localhost, 127.0.0.1 and [::1], with no port or the server's, are answered."""
    host = host.format(port=port_of(databuddy_server))
    assert ask(databuddy_server, "GET", "/health", host=host)[0] == 200


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "localhost.evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "localhost:1",
        "10.0.0.1:{port}",
        "[::2]:{port}",
        "",
        "local host",
        "localhost:{port}/x",
    ],
)
def test_other_names_are_refused_with_421(databuddy_server, host):
    """Any other Host, or a loopback name with another port, gets 421 and a JSON error."""
    host = host.format(port=port_of(databuddy_server))
    status, headers, body = ask(databuddy_server, "GET", "/events", host=host)
    assert status == 421
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)
    assert (error["success"], error["code"]) == (False, "MISDIRECTED_REQUEST")
    assert "DNS rebinding" in error["message"] and "allowed_hosts" in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/stream"),
        ("GET", "/events"),
        ("DELETE", "/events"),
        ("GET", "/rejections"),
        ("GET", "/health"),
        ("GET", "/no-such-page"),
        ("POST", "/track"),
        ("POST", "/"),
        ("POST", "/batch"),
    ],
)
def test_every_path_refuses_a_foreign_host(databuddy_server, method, path):
    """The Host check comes first on every path: viewer, stream, inspection and ingest."""
    host = f"rebound.example:{port_of(databuddy_server)}"
    assert ask(databuddy_server, method, path, host=host, body=EVENT)[0] == 421
    assert databuddy_server.events() == []


def test_a_refused_ingest_request_is_kept_but_trips_no_fault(databuddy_server):
    """An ingest request with a foreign Host is counted and kept as a refusal; faults wait."""
    databuddy_server.fail_next()
    assert track(databuddy_server, host="evil.example") == 421
    assert track(databuddy_server) == 503  # the armed fault is still there
    assert databuddy_server.request_count == 2
    refused, staged = databuddy_server.rejections()[::-1]
    assert (refused["status"], refused["injected"]) == (421, None)
    assert refused["body"] == EVENT.decode()
    assert staged["injected"] == "fail_next"


def test_a_request_without_host_is_answered(databuddy_server):
    """An HTTP/1.0 request without a Host header is answered."""
    with socket.create_connection(address(databuddy_server), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"status":"ok"}')


def test_two_host_headers_are_refused(databuddy_server):
    """A request with two Host headers gets 400."""
    status, _, _ = ask(
        databuddy_server, "GET", "/health", host="localhost", headers={"Host": "evil.example"}
    )
    assert status == 400


def test_allowed_hosts_adds_names_and_exact_ports():
    """allowed_hosts names are answered with any or the server's port; name:port only so."""
    with DevServer(allowed_hosts=["devbox.local", "Proxy.Example:8080", "::2"]) as server:
        port = port_of(server)

        def status(host: str) -> int:
            return ask(server, "GET", "/health", host=host)[0]

        assert status("devbox.local") == status(f"devbox.local:{port}") == 200
        assert status("proxy.example:8080") == status(f"[::2]:{port}") == 200
        assert status("devbox.local:8080") == 421
        assert status(f"proxy.example:{port}") == status("proxy.example") == 421
        assert status(f"other.local:{port}") == 421


def test_bound_to_every_interface_any_address_is_answered():
    """Bound to 0.0.0.0, a Host that is an IP address is answered; other names are not."""
    with DevServer(host="0.0.0.0") as server:
        port = port_of(server)
        for host in (f"192.168.1.20:{port}", "10.1.2.3", f"[fe80::1]:{port}"):
            assert ask(server, "GET", "/health", host=host)[0] == 200, host
        assert ask(server, "GET", "/health", host=f"laptop.local:{port}")[0] == 421


# -- Origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
    ],
)
def test_a_cross_origin_write_must_be_json(databuddy_server, content_type):
    """A write from a foreign Origin that a browser could send without preflight gets 403."""
    headers = {"Origin": "http://evil.example"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    assert track(databuddy_server, headers=headers) == 403
    assert databuddy_server.events() == []
    (refused,) = databuddy_server.rejections()
    assert refused["status"] == 403
    assert "Content-Type: application/json" in refused["message"]


@pytest.mark.parametrize("content_type", [JSON, "Application/JSON; charset=utf-8"])
def test_a_cross_origin_json_write_is_accepted(databuddy_server, content_type):
    """A foreign Origin with Content-Type application/json (preflighted, or no browser) is fine."""
    headers = {"Origin": "http://evil.example", "Content-Type": content_type}
    assert track(databuddy_server, headers=headers) == 200


@pytest.mark.parametrize(
    "origin",
    ["null", "https://127.0.0.1:{port}", "http://127.0.0.1:1", "http://localhost:{port}"],
)
def test_origins_other_than_the_requests_own_are_foreign(databuddy_server, origin):
    """An Origin is own only when it is http:// and the authority the Host header names."""
    origin = origin.format(port=port_of(databuddy_server))
    headers = {"Origin": origin, "Content-Type": "text/plain"}
    host = f"127.0.0.1:{port_of(databuddy_server)}"
    assert track(databuddy_server, host=host, headers=headers) == 403


def test_same_origin_and_origin_less_writes_need_no_json(databuddy_server):
    """The viewer's own requests and SDKs or curl (no Origin) may send any content type."""
    own = f"http://127.0.0.1:{port_of(databuddy_server)}"
    host = own.removeprefix("http://")
    plain = {"Content-Type": "text/plain"}
    assert track(databuddy_server, host=host, headers={"Origin": own, **plain}) == 200
    assert track(databuddy_server, headers=plain) == 200
    assert len(databuddy_server.events()) == 2


def test_a_cross_origin_clear_is_refused(databuddy_server):
    """DELETE /events from a foreign Origin without JSON gets 403 and deletes nothing."""
    track(databuddy_server)
    foreign = {"Origin": "http://evil.example"}
    assert ask(databuddy_server, "DELETE", "/events", headers=foreign)[0] == 403
    assert len(databuddy_server.events()) == 1
    own = {"Origin": f"http://127.0.0.1:{port_of(databuddy_server)}"}
    assert ask(databuddy_server, "DELETE", "/events", headers=own)[0] == 200
    assert databuddy_server.events() == []


def test_reads_and_preflights_get_no_cors_grant(databuddy_server):
    """A foreign Origin may GET (the browser hides the answer); a preflight is not granted."""
    foreign = {"Origin": "http://evil.example"}
    status, headers, _ = ask(databuddy_server, "GET", "/events", headers=foreign)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    preflight = {**foreign, "Access-Control-Request-Method": "POST"}
    status, headers, _ = ask(databuddy_server, "OPTIONS", "/track", headers=preflight)
    assert status == 405
    assert not any(name.lower().startswith("access-control-") for name in headers)
