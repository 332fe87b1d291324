"""Every code block of the README and of docs/ runs as written, against a local ingest server.

See doc_runner.py for the markers a block may carry and what each one means.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.doc_runner import (
    ROOT,
    annotations_failing_on_39,
    check_marker,
    describe_blocks,
    pages,
    run_page,
)

pytestmark = pytest.mark.slow

#: Variables a developer's shell may carry that would change what a sample does.
_ENVIRONMENT = (
    "DATABUDDY_API_KEY",
    "DATABUDDY_API_URL",
    "DATABUDDY_CLIENT_ID",
    "DATABUDDY_DEBUG",
    "DATABUDDY_DISABLED",
    "DATABUDDY_SPOOL_DIR",
)


def _isolate(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(workdir)


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_as_written(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block runs in order; each one that sends makes the page's server store an event."""
    _isolate(monkeypatch, tmp_path)
    run_page(path, tmp_path, monkeypatch.setenv)


def test_every_block_has_a_known_marker() -> None:
    """Markers name a known mode, partial blocks say why, and runnable shell blocks are marked."""
    problems = []
    for path in pages():
        for line, block in describe_blocks(path):
            problem = check_marker(block)
            if problem:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {problem}")
    assert problems == []


def test_every_page_has_python_that_runs() -> None:
    """The pages that show Python run some of it: compile-only is the exception, not the rule."""
    compile_only = []
    for path in pages():
        blocks = [b for _, b in describe_blocks(path) if b.language == "python"]
        if blocks and all(b.mode == "compile-only" for b in blocks):
            compile_only.append(path.name)
    assert compile_only == []


# -- the runner itself -----------------------------------------------------------------
def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    return page


def test_a_sample_that_sends_nothing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A block that builds a client but tracks nothing fails, naming its line."""
    page = _page(
        tmp_path,
        "# Page\n\n```python\nfrom databuddy_otel import Databuddy\n\nclient = Databuddy()\n```\n",
    )
    _isolate(monkeypatch, tmp_path / "work")
    with pytest.raises(AssertionError, match=r"page\.md:3: this sample sends nothing"):
        run_page(page, tmp_path / "work", monkeypatch.setenv)


def test_a_sample_that_tracks_through_the_environment_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Databuddy() with no arguments reaches the page's server through DATABUDDY_*."""
    page = _page(
        tmp_path,
        "```python\nfrom databuddy_otel import Databuddy\n\n"
        'Databuddy().track(name="signup")\n```\n\n'
        "<!-- doc-test: sends-nothing -->\n```python\nx = 1\n```\n",
    )
    _isolate(monkeypatch, tmp_path / "work")
    ran = run_page(page, tmp_path / "work", monkeypatch.setenv)
    assert [line for line, _ in ran.timings] == [1, 8]


def test_a_compile_only_block_is_still_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial block is not run, but a syntax error in it fails the page."""
    page = _page(tmp_path, "<!-- doc-test: compile-only: a fragment -->\n```python\ndef f(:\n```\n")
    _isolate(monkeypatch, tmp_path / "work")
    with pytest.raises(SyntaxError):
        run_page(page, tmp_path / "work", monkeypatch.setenv)


def test_annotations_python_39_cannot_evaluate_are_found() -> None:
    """`dict | None` in a signature fails on 3.9 unless annotations are postponed."""
    import ast

    late = ast.parse("def f(event: dict) -> dict | None:\n    return event\n")
    postponed = ast.parse("from __future__ import annotations\ndef f(e: dict | None): ...\n")
    assert annotations_failing_on_39(late) == [1]
    assert annotations_failing_on_39(postponed) == []
