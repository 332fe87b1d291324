"""The ``databuddy_server`` pytest fixture, registered through the pytest11 entry point."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import requests

from databuddy_otel.devserver import DevServer

INNER_TESTS = """
import requests

seen = []


def test_uses_the_fixture(databuddy_server):
    # The fixture serves and stores.
    seen.append(databuddy_server)
    requests.post(f"{databuddy_server.url}/track", json={"name": "inner"},
                  params={"website_id": "w"}, timeout=10)
    assert [e["name"] for e in databuddy_server.wait_for_events(1)] == ["inner"]


def test_each_test_gets_a_fresh_server(databuddy_server):
    # A second test gets a new, empty server.
    assert databuddy_server is not seen[0]
    assert databuddy_server.events() == []


def test_the_previous_server_was_stopped():
    # The first test's server no longer answers.
    try:
        requests.get(f"{seen[0].url}/health", timeout=5)
    except requests.ConnectionError:
        return
    raise AssertionError("the fixture left its server running")
"""


def test_fixture_yields_a_running_memory_server(databuddy_server):
    """The fixture gives a started DevServer with an empty in-memory store."""
    assert isinstance(databuddy_server, DevServer)
    assert databuddy_server.events() == []
    assert requests.get(f"{databuddy_server.url}/health", timeout=5).ok


@pytest.mark.slow
def test_fixture_works_in_a_fresh_pytest_run(tmp_path):
    """In a new pytest process the entry point provides the fixture, fresh per test."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "test_inner.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_plugin_import_is_cheap():
    """Importing the plugin does not import the dev server; the fixture does, lazily."""
    code = (
        "import sys, databuddy_otel.pytest_plugin; print('databuddy_otel.devserver' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
