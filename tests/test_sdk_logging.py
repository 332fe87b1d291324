"""The SDK's own logging: through the logging module, never print, never the key."""

from __future__ import annotations

import logging

import pytest

from databuddy_otel import Databuddy
from databuddy_otel.devserver import DevServer


def test_debug_logs_through_logging_and_hides_the_key(
    server: DevServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """debug=True logs to the 'databuddy' logger, never prints, and never shows the API key."""
    caplog.set_level(logging.DEBUG)
    client = Databuddy(
        api_key="dbdy_supersecret",
        api_url=server.url,
        debug=True,
        enable_batching=False,
        retry_deadline=2,
    )
    server.fail_next(1, status=503)
    client.track(name="e")
    client.track(name="")
    client.shutdown()
    assert any(r.name == "databuddy" for r in caplog.records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dbdy_supersecret" not in logged
    out = capsys.readouterr()
    assert out.out == ""
    assert "dbdy_supersecret" not in out.err
