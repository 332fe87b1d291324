"""init() and the module-level functions: one default client per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import databuddy_otel
from databuddy_otel import default
from databuddy_otel.devserver import DevServer


@pytest.fixture(autouse=True)
def no_default_client() -> Iterator[None]:
    default.shutdown(2)
    yield
    default.shutdown(2)


def _run(code: str, server: DevServer, **env: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_script_with_init_and_track_only_delivers_at_exit(server: DevServer) -> None:
    """init() + databuddy_otel.track(), no flush, no shutdown: the event arrives."""
    _run(
        f"""
        import databuddy_otel
        databuddy_otel.init(client_id="script-site", api_url={server.url!r})
        databuddy_otel.track("signup", {{"plan": "pro"}})
        """,
        server,
    )
    [event] = server.events()
    assert (event["name"], event["properties"]) == ("signup", {"plan": "pro"})


def test_the_environment_alone_and_a_handler_without_a_client(server: DevServer) -> None:
    """With DATABUDDY_* set, track() and a dictConfig handler share the default client."""
    _run(
        """
        import logging.config
        import databuddy_otel
        logging.config.dictConfig({
            "version": 1,
            "handlers": {"db": {"class": "databuddy_logging.DatabuddyHandler"}},
            "root": {"handlers": ["db"], "level": "INFO"},
        })
        databuddy_otel.track(name="from_track")
        logging.getLogger("app").info("from_logging", extra={"db_props": {"k": 1}})
        handler = logging.getLogger().handlers[0]
        assert handler.client is databuddy_otel.get_client()
        """,
        server,
        DATABUDDY_CLIENT_ID="env-site",
        DATABUDDY_API_URL=server.url,
    )
    assert sorted(e["name"] for e in server.events()) == ["from_logging", "from_track"]


def test_init_again_replaces_and_flushes_the_previous_client(server: DevServer) -> None:
    first = databuddy_otel.init(client_id="a", api_url=server.url, batch_timeout=60_000)
    assert databuddy_otel.track("queued_in_first").success
    second = databuddy_otel.init(client_id="b", api_url=server.url)
    assert databuddy_otel.get_client() is second
    assert [e["name"] for e in server.events()] == ["queued_in_first"]
    assert not first.track(name="late").success  # the first one is shut down
    assert databuddy_otel.track(name="in_second").success
    assert databuddy_otel.flush(5).success
    assert databuddy_otel.shutdown().success
    assert sorted(e["name"] for e in server.events()) == ["in_second", "queued_in_first"]


def test_a_bad_environment_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Module-level track() never raises, even when the default client cannot be built."""
    monkeypatch.setenv("DATABUDDY_DEBUG", "perhaps")
    response = databuddy_otel.track(name="x")
    assert not response.success and "environment" in str(response.error)
    assert not databuddy_otel.flush().success
    with pytest.raises(ValueError, match="DATABUDDY_DEBUG"):
        databuddy_otel.init()


def test_doors_built_before_init_follow_the_client_init_makes(server: DevServer) -> None:
    """A handler and a loguru sink made before init() (Django configures LOGGING before
    its apps are ready) send to the client init() makes, and build none of their own."""
    import logging

    from loguru import logger as loguru_logger

    from databuddy_logging import DatabuddyHandler
    from databuddy_logging.loguru import DatabuddySink

    handler = DatabuddyHandler()
    sink = DatabuddySink()
    assert default.current() is None  # nothing built yet
    client = databuddy_otel.init(client_id="late", api_url=server.url)
    assert handler.client is client and sink.client is client
    log = logging.getLogger("test.before_init")
    log.addHandler(handler)
    sink_id = loguru_logger.add(sink)
    try:
        log.warning("from_handler", extra={"db_props": {"k": 1}})
        loguru_logger.info("from_sink", db_props={"k": 2})
    finally:
        log.removeHandler(handler)
        loguru_logger.remove(sink_id)  # flushes the default client, does not shut it down
        handler.close()
    assert sorted(e["name"] for e in server.events()) == ["from_handler", "from_sink"]
    assert client.track(name="still_open").success
