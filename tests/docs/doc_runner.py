"""Runs the code blocks of a Markdown page as a reader would, against a local ingest server.

Sybil parses each page (``README.md``, ``docs/*.md``): every fenced ``python``,
``bash`` and ``sh`` block becomes an example, together with the marker that may
precede it, an HTML comment the rendered page does not show:

============================================  ====================================================
marker                                        what the runner does
============================================  ====================================================
(none, Python)                                runs the block; the page's servers must have stored
                                              at least one new event once it ends, or it fails
                                              with "this sample sends nothing"
``<!-- doc-test: sends-nothing -->``          runs the block, which need not send anything
``<!-- doc-test: compile-only: REASON -->``   compiles the block only (a fragment of a larger
                                              program, or code that needs the real service)
``<!-- doc-test: pytest -->``                 writes the block to a test file and runs pytest on
                                              it, in a subprocess: its tests must pass
``<!-- doc-test: run -->`` (shell)            runs the block with bash; it must exit 0
``<!-- doc-test: background -->`` (shell)     starts a long-running command (a dev server) for
                                              the rest of the page
``<!-- doc-test: not-run: REASON -->``        (shell) shown only; required on a shell block that
                                              starts the dev server or an example without running
(none, shell)                                 shown only (``pip install``, ``export`` ...)
============================================  ====================================================

The blocks of a page share one namespace, in order, as a reader's session would.
Each page gets a fresh :class:`DevServer`; ``DATABUDDY_API_URL`` points at it and
``DATABUDDY_CLIENT_ID`` is set, so ``Databuddy()`` and ``Databuddy(client_id="...")``
reach it. The documented port ``8910`` is moved to a free port: to the page's
server, or to the one a ``background`` block started. Python blocks are compiled
without inheriting ``from __future__`` flags, so they behave as on the reader's
interpreter (the matrix runs them on 3.9), and an ``X | None`` annotation in a block
without ``from __future__ import annotations`` fails on every interpreter.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sybil import Document, Example, Region
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer, FencedCodeBlockLexer

from databuddy_otel._runtime import exit_hooks, integrations
from databuddy_otel.devserver import DevServer

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_PORT = "8910"
PYTHON_MODES = ("run", "sends-nothing", "compile-only", "pytest")
SHELL_MODES = ("shown", "run", "background", "not-run")
#: Shell commands that must be run, or say why not.
RUNNABLE_SHELL = re.compile(r"examples/\w+\.py|databuddy-devserver")

_MARKER = DirectiveInHTMLCommentLexer(directive=r"doc-test", arguments=r".*?")
_PYTHON = FencedCodeBlockLexer(language=r"python")
_SHELL = FencedCodeBlockLexer(language=r"bash|sh")


@dataclass
class Block:
    """One fenced block and what the runner does with it."""

    language: str  # "python" or "shell"
    source: str
    mode: str
    reason: str = ""


def parse_blocks(document: Document) -> Iterator[Region]:
    """Sybil parser: a region for each Python or shell block, with its marker's mode."""
    markers = sorted(_MARKER(document), key=lambda r: r.start)
    for language, lexer in (("python", _PYTHON), ("shell", _SHELL)):
        for region in lexer(document):
            marker = next(
                (
                    m
                    for m in markers
                    if m.end <= region.start
                    and re.fullmatch(r"\s*(?:-+>)?\s*", document.text[m.end : region.start])
                ),
                None,
            )
            mode, reason = "run" if language == "python" else "shown", ""
            if marker is not None:
                mode, _, reason = str(marker.lexemes["arguments"]).partition(":")
                mode, reason = mode.strip(), reason.strip()
            yield Region(
                region.start,
                region.end,
                Block(language, region.lexemes["source"], mode, reason),
                evaluate_block,
            )


def evaluate_block(example: Example) -> None:
    """Sybil evaluator: hand the block to the page it belongs to."""
    page: Page = example.namespace["__page__"]
    page.evaluate(example)


def check_marker(block: Block) -> str | None:
    """What is wrong with a block's marker, or ``None``."""
    modes = PYTHON_MODES if block.language == "python" else SHELL_MODES
    if block.mode not in modes:
        return f"unknown doc-test mode {block.mode!r} for a {block.language} block: {modes}"
    if block.mode in ("compile-only", "not-run") and not block.reason:
        return f"'doc-test: {block.mode}' needs a reason after a colon"
    if block.language == "shell" and block.mode == "shown" and RUNNABLE_SHELL.search(block.source):
        return (
            "this shell block starts the dev server or an example: mark it "
            "'<!-- doc-test: run -->' (or background), or 'not-run: REASON'"
        )
    return None


def annotations_failing_on_39(tree: ast.Module) -> list[int]:
    """Lines with an ``X | Y`` annotation that Python 3.9 would evaluate (and refuse)."""
    future = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if future:
        return []
    found: list[int] = []
    for node in ast.walk(tree):
        annotations: list[ast.expr | None] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            annotations = [a.annotation for a in every] + [node.returns]
        elif isinstance(node, ast.AnnAssign):
            annotations = [node.annotation]
        for annotation in annotations:
            if annotation is not None and any(
                isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                for n in ast.walk(annotation)
            ):
                found.append(annotation.lineno)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_event_count(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/events", timeout=5) as answer:
            return len(json.load(answer))
    except OSError:
        return 0


@dataclass
class Page:
    """One page's run: its servers, its namespace's surroundings, and what to undo."""

    path: Path
    workdir: Path
    server: DevServer
    servers: list[DevServer] = field(default_factory=list)
    cli_urls: list[str] = field(default_factory=list)
    stopped_counts: dict[int, int] = field(default_factory=dict)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    pytest_files: list[tuple[int, Path]] = field(default_factory=list)
    port_target: str = ""
    timings: list[tuple[int, float]] = field(default_factory=list)

    # -- counting what arrived ---------------------------------------------
    def stored(self) -> int:
        """Events stored by every server of the page: its own, CLI ones, ones a block made."""
        total = sum(self.stopped_counts.values())
        for server in self.servers:
            if id(server) not in self.stopped_counts:
                with contextlib.suppress(RuntimeError):  # not started
                    total += len(server.events())
        return total + sum(_http_event_count(url) for url in self.cli_urls)

    def settle(self, namespace: dict[str, Any]) -> None:
        """Deliver what the block left queued: open clients, OpenTelemetry providers."""
        for queue in exit_hooks.open_queues():
            queue.flush(5)
        for value in list(namespace.values()):
            force_flush = getattr(value, "force_flush", None)
            if callable(force_flush) and type(value).__module__.startswith("opentelemetry"):
                force_flush()

    # -- evaluating one block ----------------------------------------------
    def evaluate(self, example: Example) -> None:
        __tracebackhide__ = True
        block: Block = example.parsed
        problem = check_marker(block)
        if problem:
            raise AssertionError(f"{example.path}:{example.line}: {problem}")
        source = re.sub(rf"\b{DOCUMENTED_PORT}\b", self.port_target, block.source)
        started = time.perf_counter()
        if block.language == "python":
            self._python(example, block, source)
        elif block.mode == "run":
            if "databuddy-devserver" in block.source:  # it starts a server of its own
                source = re.sub(rf"\b{DOCUMENTED_PORT}\b", str(free_port()), block.source)
            self._shell(example, source)
        elif block.mode == "background":
            self._background(example, block.source)
        self.timings.append((example.line, time.perf_counter() - started))

    def _python(self, example: Example, block: Block, source: str) -> None:
        __tracebackhide__ = True
        padded = "\n" * (example.line + block.source.line_offset) + source  # type: ignore[attr-defined]
        tree = ast.parse(padded, filename=str(example.path))
        late = annotations_failing_on_39(tree)
        if late:
            raise AssertionError(
                f"{example.path}:{late[0]}: an 'X | Y' annotation fails on Python 3.9; "
                "add 'from __future__ import annotations' or use Optional/Union"
            )
        code = compile(tree, str(example.path), "exec", dont_inherit=True)
        if block.mode == "compile-only":
            return
        if block.mode == "pytest":
            test_file = self.workdir / f"test_{self.path.stem.replace('-', '_')}_{example.line}.py"
            test_file.write_text(source, encoding="utf-8")
            self.pytest_files.append((example.line, test_file))
            return
        before = self.stored()
        exec(code, example.namespace)
        example.namespace.pop("__builtins__", None)
        if block.mode == "sends-nothing":
            return
        self.settle(example.namespace)
        deadline = time.monotonic() + 5
        while self.stored() <= before:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{example.path}:{example.line}: this sample sends nothing: no server of the "
                    "page stored a new event. Make it send, or mark it "
                    "'<!-- doc-test: sends-nothing -->'"
                )
            time.sleep(0.02)

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        return env

    def _shell(self, example: Example, source: str) -> None:
        # Output to a file, not a pipe: a job the block puts in the background keeps a
        # pipe open after the block ends.
        log = self.workdir / f".shell-{example.line}.log"
        with open(log, "w", encoding="utf-8") as out:
            process = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", source],
                cwd=self.workdir,
                env=self._environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            try:
                process.wait(timeout=60)
            finally:
                _kill_group(process)
        output = log.read_text(encoding="utf-8")
        if process.returncode != 0:
            raise AssertionError(
                f"{example.path}:{example.line}: the shell block exited {process.returncode}:\n"
                f"{output}"
            )

    def _background(self, example: Example, source: str) -> None:
        port = str(free_port())
        command = re.sub(rf"\b{DOCUMENTED_PORT}\b", port, source).strip()
        process = subprocess.Popen(
            ["bash", "-c", "exec " + command],
            cwd=self.workdir,
            env=self._environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        first = process.stdout.readline()
        if process.poll() is not None or not first:
            raise AssertionError(
                f"{example.path}:{example.line}: {command!r} did not start: {first}"
            )
        url = f"http://127.0.0.1:{port}"
        self.cli_urls.append(url)
        self.port_target = port  # later blocks' 8910 is this server

    def run_pytest_blocks(self) -> None:
        """Run the test files the page's ``pytest`` blocks became; every test must pass."""
        if not self.pytest_files:
            return
        files = [str(path) for _, path in self.pytest_files]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
            cwd=self.workdir,
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            lines = ", ".join(str(line) for line, _ in self.pytest_files)
            raise AssertionError(
                f"{self.path}: the pytest blocks (lines {lines}) failed:\n"
                f"{done.stdout}{done.stderr}"
            )

    def close(self) -> None:
        for process in self.processes:
            _kill_group(process)


def _kill_group(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    elif process.returncode is not None:
        # A background job the block started may still run in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    if process.stdout is not None:
        process.stdout.close()


# -- undoing what samples change in the test process ---------------------------------
@dataclass
class ProcessState:
    """Loggers, signal handlers and structlog's configuration, to restore after a page."""

    loggers: dict[str, tuple[int, list[logging.Handler], bool]]
    sigterm: Any
    queues: set[Any]
    integrations: dict[str, bool]

    @classmethod
    def capture(cls) -> ProcessState:
        every = dict(logging.Logger.manager.loggerDict)
        loggers = {
            name: (logger.level, list(logger.handlers), logger.propagate)
            for name, logger in every.items()
            if isinstance(logger, logging.Logger)
        }
        root = logging.getLogger()
        loggers[""] = (root.level, list(root.handlers), root.propagate)
        return cls(
            loggers,
            signal.getsignal(signal.SIGTERM),
            set(exit_hooks.open_queues()),
            integrations.current(),
        )

    def restore(self) -> None:
        for queue in set(exit_hooks.open_queues()) - self.queues:
            queue.close(2)
        every: dict[str, Any] = dict(logging.Logger.manager.loggerDict)
        every[""] = logging.getLogger()
        for name, logger in every.items():
            if not isinstance(logger, logging.Logger):
                continue
            level, handlers, propagate = self.loggers.get(name, (logging.NOTSET, [], True))
            for handler in list(logger.handlers):
                if handler not in handlers:
                    logger.removeHandler(handler)
                    handler.close()
            logger.setLevel(level)
            logger.propagate = propagate
        signal.signal(signal.SIGTERM, self.sigterm)
        integrations.switch(self.integrations)
        structlog = sys.modules.get("structlog")
        if structlog is not None:
            structlog.reset_defaults()
            structlog.contextvars.clear_contextvars()


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def parse(path: Path) -> Document:
    return Document.parse(str(path), parse_blocks)


def run_page(path: Path, workdir: Path, setenv: Callable[[str, str], None]) -> Page:
    """Run every block of ``path`` in order; raise on the first that fails."""
    (workdir / ".venv").symlink_to(sys.prefix)
    (workdir / "examples").symlink_to(ROOT / "examples")
    document = parse(path)
    state = ProcessState.capture()
    original_start, original_stop = DevServer.start, DevServer.stop
    page: Page | None = None

    def start(server: DevServer) -> DevServer:
        result = original_start(server)
        if page is not None:
            page.servers.append(server)
        return result

    def stop(server: DevServer) -> None:
        if page is not None and server in page.servers and id(server) not in page.stopped_counts:
            with contextlib.suppress(RuntimeError):
                page.stopped_counts[id(server)] = len(server.events())
        original_stop(server)

    server = DevServer(port=free_port()).start()
    page = Page(path, workdir, server, servers=[server])
    page.port_target = str(server.url.rsplit(":", 1)[1])
    setenv("DATABUDDY_API_URL", server.url)
    setenv("DATABUDDY_CLIENT_ID", "docs-site")
    DevServer.start, DevServer.stop = start, stop  # type: ignore[method-assign]
    try:
        document.namespace["__page__"] = page
        document.namespace["__name__"] = "__main__"  # as in the reader's script
        for example in document.examples():
            example.evaluate()
        page.run_pytest_blocks()
    finally:
        DevServer.start, DevServer.stop = original_start, original_stop  # type: ignore[method-assign]
        try:
            state.restore()
        finally:
            page.close()
            server.stop()
    return page


def describe_blocks(path: Path) -> list[tuple[int, Block]]:
    """(line, block) for every block of a page, in order."""
    document = parse(path)
    return [(example.line, example.parsed) for example in document.examples()]


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip()
