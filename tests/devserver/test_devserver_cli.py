"""``python -m databuddy_otel.devserver``: banner, serving, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import re
import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from databuddy_otel.devserver import DevServer
from databuddy_otel.devserver.__main__ import main

BANNER = re.compile(
    r"Databuddy dev server listening on (http://127\.0\.0\.1:(\d+)) \(events: \1/\)\n"
)
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def read_line(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """The next stdout line, failing (not hanging) if none comes within ``timeout``."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"no output from the dev server within {timeout}s")
    return proc.stdout.readline()


@contextmanager
def devserver_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run the CLI with ``args`` on a free port; yield the process and its URL."""
    command = [sys.executable, "-m", "databuddy_otel.devserver", "--port", "0", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            line = read_line(proc)
            match = BANNER.fullmatch(line)
            assert match, f"unexpected first line {line!r}"
            yield proc, match.group(1)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=15)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serves_and_stops_cleanly_on_signal(tmp_path, signum):
    """The CLI prints its URL, stores a posted event in --db, and exits 0 on the signal."""
    db = str(tmp_path / "cli.sqlite3")
    with devserver_process("--db", db) as (proc, url):
        response = requests.post(
            f"{url}/track", json={"name": "from-cli"}, params={"website_id": "w"}, timeout=10
        )
        assert response.status_code == 200
        proc.send_signal(signum)
        assert proc.wait(timeout=15) == 0
        _, err = proc.communicate()
        assert "Traceback" not in err
    with DevServer(db=db) as reopened:
        assert [e["name"] for e in reopened.events()] == ["from-cli"]


def test_cli_credential_lists_are_repeatable():
    """--client-id and --api-key may be given several times; others are refused."""
    args = ["--client-id", "a", "--client-id", "b", "--api-key", "k1", "--api-key", "k2"]
    with devserver_process(*args) as (proc, url):

        def status(**kwargs: object) -> int:
            return requests.post(
                f"{url}/track", json={"name": "x"}, timeout=10, **kwargs
            ).status_code

        assert status(params={"website_id": "b"}) == 200
        assert status(params={"website_id": "c"}) == 404
        assert status(headers={"x-api-key": "k2"}) == 200
        assert status(headers={"Authorization": "Bearer k3"}) == 403
        legacy = requests.post(f"{url}/?client_id=c", json={"type": "custom", "name": "x"})
        assert legacy.json()["message"] == "Invalid or inactive client ID"
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_cli_allowed_hosts_take_a_comma_separated_list():
    """--allowed-hosts adds each comma-separated name; other Host names still get 421."""
    with devserver_process("--quiet", "--allowed-hosts", "devbox.local, proxy:8080") as (
        proc,
        url,
    ):

        def status(host: str) -> int:
            return requests.get(f"{url}/health", headers={"Host": host}, timeout=10).status_code

        port = url.rpartition(":")[2]
        assert status(f"devbox.local:{port}") == status("proxy:8080") == 200
        assert status(f"localhost:{port}") == 200
        assert status(f"evil.example:{port}") == 421
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_main_returns_2_on_a_bad_allowed_host(capsys):
    """main() rejects an --allowed-hosts entry that is not a host name with exit code 2."""
    assert main(["--allowed-hosts", "devbox,http://x"]) == 2
    assert "allowed_hosts entries are host names" in capsys.readouterr().err


def test_cli_prints_one_line_per_request():
    """Each ingest request prints a line: what was stored, or the refusal and its reason."""
    with devserver_process() as (proc, url):
        requests.post(
            f"{url}/track", json={"name": "signup"}, params={"website_id": "w"}, timeout=10
        )
        stored = read_line(proc)
        requests.post(f"{url}/track", json={"name": "n" * 300}, params={"website_id": "w"})
        refused = read_line(proc)
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    assert stored.rstrip().endswith("track   POST /track  200  stored 1 event: signup")
    assert "400  refused: Invalid request body (name: String must contain at most 256" in refused


def test_cli_quiet_prints_only_the_first_line():
    """With --quiet the banner is the only output, however many requests come."""
    with devserver_process("--quiet") as (proc, url):
        for _ in range(3):
            requests.post(f"{url}/track", json={"name": "a"}, params={"website_id": "w"})
        requests.post(f"{url}/track", json={"name": ""}, params={"website_id": "w"})
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert out == ""  # the banner was read already
    assert "Traceback" not in err


def test_main_returns_1_when_the_port_is_taken(capsys):
    """main() reports a busy port on stderr and returns 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    assert "cannot start" in capsys.readouterr().err


def test_main_returns_2_on_a_bad_port(capsys):
    """main() rejects an impossible port with exit code 2."""
    assert main(["--port", "70000"]) == 2
    assert "port must be" in capsys.readouterr().err


def test_cli_prints_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version names the installed distribution's version and exits 0."""
    import importlib.metadata

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    version = importlib.metadata.version("databuddy-otel")
    assert capsys.readouterr().out.strip() == f"databuddy-devserver {version}"


def test_cli_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABUDDY_DEVSERVER_* variables set the options; a command-line option wins."""
    from databuddy_otel.devserver.__main__ import _parser

    environ = {
        "DATABUDDY_DEVSERVER_PORT": "0",
        "DATABUDDY_DEVSERVER_DB": "/tmp/x.sqlite3",
        "DATABUDDY_DEVSERVER_CLIENT_ID": "site-a, site-b",
        "DATABUDDY_DEVSERVER_QUIET": "1",
    }
    args = _parser(environ).parse_args([])
    assert (args.port, args.db, args.client_id, args.quiet) == (
        0,
        "/tmp/x.sqlite3",
        ["site-a", "site-b"],
        True,
    )
    assert _parser(environ).parse_args(["--port", "9999"]).port == 9999
    with pytest.raises(SystemExit):
        _parser({"DATABUDDY_DEVSERVER_PORT": "eighty"}).parse_args([])
