"""The package installs next to the OpenTelemetry releases teams already run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_resolves_with_a_contrib_instrumentation_a_year_old(tmp_path: Path) -> None:
    """pip resolves this package together with opentelemetry-instrumentation-flask 0.50b0."""
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed"]
    done = subprocess.run(
        [*pip, "--report", str(report), str(ROOT), "opentelemetry-instrumentation-flask==0.50b0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 and "ResolutionImpossible" not in done.stderr:
        pytest.skip(f"the package index cannot answer: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr
    chosen = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert chosen["opentelemetry-sdk"].startswith("1.29.")
    assert "databuddy-otel" in chosen
