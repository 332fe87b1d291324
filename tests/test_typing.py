"""A type checker catches the mistakes users make with the API before it runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

USER_SCRIPT = """
from databuddy_otel import Databuddy
from databuddy_otel.span_exporter import DatabuddySpanExporter

client = Databuddy(client_id="x", protocol="trak")  # line 5
client.track(nme="x")  # line 6
client.track(name=1)  # line 7
client.track("signup", {"plan": "pro"})
client.track(name="ok", properties={"a": 1}, anonymous_id="anon")
client.track({"name": "mapping", "anonymousId": "anon"})
Databuddy(client_id="x", on_queue_full="wait")  # line 11
Databuddy(client_id="x", spool_fsync="sometimes")  # line 12
Databuddy(client_id="x", batch_size="10")  # line 13
DatabuddySpanExporter(client_id="x", batch_size=5)  # line 14
Databuddy(clientId="x")  # line 15
"""


def test_mistakes_are_type_errors_and_right_calls_are_not(tmp_path: Path) -> None:
    """Misspelt fields, wrong types and unknown option strings fail mypy --strict."""
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    lines = {int(n) for n in re.findall(r"user\.py:(\d+): error", done.stdout)}
    assert lines == {5, 6, 7, 11, 12, 13, 14, 15}, done.stdout
    assert 'did you mean "name"' in done.stdout
