"""Every example runs against the local ingest server, prints what it stored, and exits 0."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _missing(*modules: str) -> str | None:
    """The first of ``modules`` that cannot be imported (alternatives joined by '|')."""
    for module in modules:
        if not any(importlib.util.find_spec(name) for name in module.split("|")):
            return module
    return None


# (script, modules it needs, lines its output must contain)
CASES = [
    (
        "flask_app.py",
        ("flask",),
        [
            "The server stored 6 events:",
            "Every event carries the browser's anonymous and session ids.",
        ],
    ),
    (
        "fastapi_app.py",
        ("fastapi", "httpx2|httpx"),
        [
            "The server stored 6 events:",
            "Every event carries the browser's anonymous and session ids.",
        ],
    ),
    (
        "django_app.py",
        ("django",),
        [
            "The server stored 4 events:",
            "Every event carries the browser's anonymous and session ids.",
        ],
    ),
    (
        "lambda_handler.py",
        (),
        [
            "The server stored 7 events:",
            "Every invocation's events arrived before its handler returned.",
        ],
    ),
    (
        "celery_style_worker.py",
        (),
        ["The server stored 10 events:", "All 9 jobs tracked by"],
    ),
    (
        "rq_worker.py",
        ("rq",),
        ["The server stored 10 events:", "All 5 jobs' events arrived from 5 work-horse(s)"],
    ),
    (
        "loguru_example.py",
        ("loguru",),
        ["The server stored 2 events:", '{"name": "user_signup", "anonymousId": "anon_42"'],
    ),
    (
        "webhook_and_jobs.py",
        (),
        ["The server stored 5 events:", "stats: delivered=5 deduplicated=1"],
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "needs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_example_runs_and_reports_what_the_server_stored(
    script: str, needs: tuple[str, ...], expected: list[str]
) -> None:
    """The example exits 0 and prints the events the local ingest server stored."""
    missing = _missing(*needs)
    if missing:
        pytest.skip(f"{script} needs {missing!r}: pip install -e '.[frameworks]'")
    if script == "celery_style_worker.py" and "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the prefork example needs the 'fork' start method (POSIX)")
    if script == "rq_worker.py" and shutil.which("redis-server") is None:
        pytest.skip("the RQ example needs a redis-server binary")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABUDDY_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        # RQ's burst worker can wait out its pubsub thread's 60 s poll before it exits
        # (rq/rq#1613, seen on a loaded machine): the example's events are stored by then.
        timeout=150 if script == "rq_worker.py" else 60,
        env=env,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.splitlines()
    for wanted in expected:
        assert any(line.startswith(wanted) for line in lines), f"{wanted!r} not in:\n{done.stdout}"
    assert "Traceback" not in done.stderr, done.stderr
