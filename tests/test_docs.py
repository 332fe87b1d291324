"""The documentation builds with ``mkdocs build --strict``: no broken links, every page in nav."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (pip install mkdocs)",
)
@pytest.mark.slow
def test_docs_build_strict(tmp_path: Path) -> None:
    """mkdocs builds the site in strict mode; any warning (broken link, page not in nav) fails."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    assert (tmp_path / "site" / "index.html").exists()


def test_every_page_ends_with_a_verify_step() -> None:
    """Each how-to page ends with a 'Verify' section that shows the event arriving."""
    how_tos = [
        "getting-started.md",
        "client.md",
        "configuration.md",
        "web-frameworks.md",
        "serverless.md",
        "testing.md",
        "troubleshooting.md",
        "migration-from-node.md",
        "protocol.md",
        "logging.md",
        "structlog.md",
        "production.md",
        "architecture.md",
    ]
    for page in how_tos:
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        headings = [line for line in text.splitlines() if line.startswith("## ")]
        assert headings and headings[-1] == "## Verify", f"{page} does not end with ## Verify"
