"""Secrets stay secret, TLS stays verified, and the local server stays on loopback."""

from __future__ import annotations

import http.server
import logging
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from databuddy_otel import Databuddy, Undelivered
from databuddy_otel.devserver import DevServer
from databuddy_otel.devserver.__main__ import main as devserver_main

KEY = "dbdy_s3cr3t_key_value"


@pytest.mark.slow
def test_api_key_never_appears_in_logs_errors_reprs_or_events(
    server: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With debug on and every failure path taken, the key shows up nowhere."""
    caplog.set_level(logging.DEBUG)
    lost: list[Undelivered] = []
    client = Databuddy(
        api_key=KEY,
        api_url=server.url,
        debug=True,
        retry_deadline=0.5,
        timeout=0.3,
        on_undelivered=lost.extend,
    )
    server.fail_next(1, status=401)
    server.fail_next(20, status=503)
    responses = [client.track(name="secret_test"), client.track(name="")]
    client.flush(timeout=5)
    server.drop_next(3)
    client.track(name="after_drop", properties={"k": "v"})
    client.shutdown(timeout=5)
    texts = [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info) for r in caplog.records if r.exc_info]
    texts += [repr(client), repr(client.settings), repr(client.stats())]
    texts += [repr(r) for r in responses] + [repr(u) for u in lost]
    texts += [repr(e) for e in server.events()]
    assert texts and not [t for t in texts if KEY in t]


def test_local_server_binds_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """DevServer and the command line listen on 127.0.0.1 unless told otherwise."""
    with DevServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
    import argparse

    seen: dict[str, str] = {}
    real_parse = argparse.ArgumentParser.parse_args

    def spy(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> argparse.Namespace:
        namespace = real_parse(self, *args, **kwargs)  # type: ignore[arg-type]
        seen["host"] = namespace.host
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    with pytest.raises(SystemExit):
        devserver_main([])
    assert seen["host"] == "127.0.0.1"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on loopback with a self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = b'{"status":"success","type":"custom_event","count":1}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_unless_turned_off_explicitly(tls_server: str) -> None:
    """A self-signed certificate is refused by default and accepted only with verify=False."""
    strict = Databuddy(client_id="c", api_url=tls_server, enable_batching=False, retry_deadline=0.3)
    refused = strict.track(name="tls")
    strict.shutdown()
    assert not refused.success and refused.error and "Network request failed" in refused.error
    lax = Databuddy(
        client_id="c", api_url=tls_server, enable_batching=False, verify=False, retry_deadline=2
    )
    assert lax.track(name="tls").success
    lax.shutdown()
