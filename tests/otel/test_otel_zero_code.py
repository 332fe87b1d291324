"""Zero-code use (opentelemetry-instrument + entry points) and the runnable example."""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from databuddy_otel.devserver import DevServer
from databuddy_otel.log_exporter import DatabuddyLogExporter
from databuddy_otel.span_exporter import DatabuddySpanExporter

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GROUPS = {
    "opentelemetry_traces_exporter": DatabuddySpanExporter,
    "opentelemetry_logs_exporter": DatabuddyLogExporter,
}


def databuddy_entry_points(group: str) -> list[Any]:
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=group, name="databuddy"))
    return [e for e in found.get(group, []) if e.name == "databuddy"]  # Python 3.9


def logs_need_the_logging_instrumentation() -> bool:
    """Before opentelemetry-sdk 1.34 the zero-code setup builds no logs pipeline at all
    unless OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED is true."""
    from opentelemetry.sdk import _configuration

    return "setup_logging_handler" not in inspect.signature(_configuration._init_logging).parameters


needs_entry_points = pytest.mark.skipif(
    not databuddy_entry_points("opentelemetry_traces_exporter"),
    reason=(
        "the 'databuddy' entry points are not installed: add them to pyproject.toml "
        "([project.entry-points.opentelemetry_traces_exporter] and "
        "[project.entry-points.opentelemetry_logs_exporter]) and reinstall the package"
    ),
)


@needs_entry_points
def test_entry_points_name_the_exporters() -> None:
    """OTEL_TRACES_EXPORTER=databuddy and OTEL_LOGS_EXPORTER=databuddy load our classes."""
    for group, cls in GROUPS.items():
        [entry_point] = databuddy_entry_points(group)
        assert entry_point.load() is cls


@needs_entry_points
def test_opentelemetry_instrument_delivers_tagged_events(server: DevServer) -> None:
    """An uninstrumented app run under opentelemetry-instrument sends its tagged events."""
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert instrument, "opentelemetry-instrument not found: pip install opentelemetry-distro"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABUDDY_", "OTEL_"))}
    env.update(
        DATABUDDY_CLIENT_ID="zero-code-site",
        DATABUDDY_API_URL=server.url,
        OTEL_TRACES_EXPORTER="databuddy",
        OTEL_LOGS_EXPORTER="databuddy",
        OTEL_METRICS_EXPORTER="none",
    )
    if logs_need_the_logging_instrumentation():
        env["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"] = "true"
    app = EXAMPLES / "otel_instrument_app.py"
    done = subprocess.run(
        [instrument, sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    events = {e["name"]: e for e in server.events()}
    assert sorted(events) == ["purchase", "receipt_sent"], done.stderr
    assert events["purchase"]["properties"]["plan"] == "pro"
    trace_ids = {e["properties"]["trace_id"] for e in events.values()}
    assert len(trace_ids) == 1, "the log event carries the span's trace id"
    assert {e["websiteId"] for e in events.values()} == {"zero-code-site"}


def test_example_runs_and_prints_the_event() -> None:
    """examples/otel_example.py starts its own server, sends one event, prints it, exits 0."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "otel_example.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("purchase: anonymousId=anon_")
    assert "cache_miss" not in done.stdout


@needs_entry_points
def test_opentelemetry_instrument_sends_tagged_stdlib_records(server: DevServer) -> None:
    """With the logging auto-instrumentation, a tagged and named logging call arrives."""
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert instrument, "opentelemetry-instrument not found: pip install opentelemetry-distro"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABUDDY_", "OTEL_"))}
    env.update(
        DATABUDDY_CLIENT_ID="zero-code-site",
        DATABUDDY_API_URL=server.url,
        DATABUDDY_TIMEOUT="3",
        OTEL_LOGS_EXPORTER="databuddy",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
    )
    app = EXAMPLES / "otel_logging_app.py"
    done = subprocess.run(
        [instrument, sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    [event] = server.events()
    assert event["name"] == "signup", done.stderr
    assert event["properties"]["plan"] == "pro"
    assert "event.name" not in event["properties"]
