"""Real processes for the deployment tests: started in a group of their own, watched, stopped.

A :class:`Program` runs one command (a server, a script) with its output read on a
background thread, so a test can wait for a line ("Listening at", "ready") with a
deadline instead of sleeping, and the pipe never fills up. Leaving the ``with``
block kills whatever is left of the process group: a test that fails halfway
leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO

#: Test-support programs the scenarios run: the apps and the scripts.
APPS = Path(__file__).parent / "apps"


class Program:
    """One command in a process group of its own; its output kept line by line."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = APPS,
        merge_stderr: bool = True,
    ) -> None:
        self.args = list(args)
        # Only what the test gives: no DATABUDDY_* setting of the machine leaks in.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("DATABUDDY_")}
        # faulthandler prints every thread's stack on SIGABRT: what a hung program waited on.
        environ = {**inherited, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **(env or {})}
        self.proc = subprocess.Popen(
            self.args,
            cwd=cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            start_new_session=True,  # its workers share its process group: one kill ends all
        )
        self._lines: list[str] = []
        self._errors: list[str] = []
        self._changed = threading.Condition()
        self._readers = [self._read(self.proc.stdout, self._lines)]
        if not merge_stderr:
            self._readers.append(self._read(self.proc.stderr, self._errors))

    def _read(self, stream: IO[str] | None, into: list[str]) -> threading.Thread:
        def pump() -> None:
            assert stream is not None
            for line in stream:
                with self._changed:
                    into.append(line.rstrip("\n"))
                    self._changed.notify_all()
            with self._changed:
                self._changed.notify_all()

        thread = threading.Thread(target=pump, name=f"output of {self.proc.pid}", daemon=True)
        thread.start()
        return thread

    @property
    def output(self) -> str:
        """Everything the program wrote so far (stderr too, unless kept apart)."""
        with self._changed:
            return "\n".join(self._lines)

    @property
    def errors(self) -> str:
        """What it wrote on stderr, when kept apart from stdout."""
        with self._changed:
            return "\n".join(self._errors)

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = 20.0) -> list[str]:
        """The first ``count`` output lines matching ``pattern`` (a regex); fails at the deadline
        or when the program exits first."""
        regex = re.compile(pattern)
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self._lines if regex.search(line)]
                if len(found) >= count:
                    return found[:count]
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reading()):
                    raise AssertionError(
                        f"{len(found)} of {count} lines matching {pattern!r} from "
                        f"{self.args[:4]} (exit code {self.proc.poll()}); output:\n{self.output}"
                    )
                self._changed.wait(min(left, 0.1))

    def _reading(self) -> bool:
        return any(t.is_alive() for t in self._readers)

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the program to exit; its exit code. Fails at the deadline."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._dump_stacks()
            raise AssertionError(
                f"{self.args[:4]} still running after {timeout:g}s; output:\n{self.output}"
                f"\nstderr:\n{self.errors}"
            ) from None
        for reader in self._readers:
            reader.join(timeout)  # the rest of the output, unless a worker still holds the pipe
        return code

    def _dump_stacks(self) -> None:
        """Have every process of the group print its threads' stacks, and read them."""
        self._signal_group(signal.SIGABRT, 3)

    def stop(self) -> None:
        """Kill what is left of the process group (the program and any worker it started)."""
        self._signal_group(signal.SIGKILL, 5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def _signal_group(self, sig: int, seconds: float) -> None:
        """Signal the whole group, wait for the program, then read the rest of its output
        (EOF once the group is gone; the pipes are closed after, not under, the readers)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(seconds)
        for reader in self._readers:
            reader.join(seconds)

    def __enter__(self) -> Program:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def python(*args: str) -> list[str]:
    """A command line on this test run's interpreter."""
    return [sys.executable, *args]


def listening_port(program: Program, pattern: str, timeout: float = 20.0) -> int:
    """The port a server printed in its "listening" line."""
    (line,) = program.wait_for(pattern, timeout=timeout)
    match = re.search(r"127\.0\.0\.1:(\d+)", line)
    assert match, line
    port = int(match.group(1))
    _wait_until_accepting(port, timeout)
    return port


def _wait_until_accepting(port: int, timeout: float) -> None:
    """Wait until ``127.0.0.1:port`` accepts a connection.

    A server may print its address before anything listens on it: uvicorn's parent
    binds the socket and its workers call ``listen()`` only after their lifespan
    startup, so a request sent between the two is refused.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, f"nothing accepts on port {port} after {timeout} s"
            time.sleep(0.05)


def get_all(
    port: int, paths: Iterable[str], *, threads: int = 8, timeout: float = 10.0
) -> list[str]:
    """GET every path from ``127.0.0.1:port`` on a few threads; the response bodies, in order.

    Fails on the first request that does not answer 200.
    """

    def get(path: str) -> str:
        status, body = _get(port, path, timeout)
        assert status == 200, f"GET {path}: {status} {body[:200]}"
        return body

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(get, paths))


def get_while_stopping(
    port: int,
    paths: Sequence[str],
    *,
    stop_after: int,
    stop: Callable[[], None],
    threads: int = 4,
    timeout: float = 10.0,
) -> list[str]:
    """GET the paths on a few threads, and call ``stop()`` once ``stop_after`` were answered.

    Returns the paths answered 200: requests refused or cut off because the server
    was stopping are left out, as a browser would see them fail.
    """
    answered: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def get(path: str) -> None:
        try:
            status, _ = _get(port, path, timeout)
        except (OSError, http.client.HTTPException):
            return  # refused or reset: the server is on its way down
        if status == 200:
            with lock:
                answered.append(path)
                if len(answered) >= stop_after:
                    enough.set()

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(get, path) for path in paths]
        assert enough.wait(timeout * 3), f"only {len(answered)} of {stop_after} answered"
        stop()
        for future in futures:
            future.result()
    return answered


def _get(port: int, path: str, timeout: float) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def run_script(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run a program from ``apps/`` to its end; stdout and stderr kept apart."""
    with Program(python(*args), env=env, merge_stderr=False) as program:
        code = program.wait(timeout)
        return subprocess.CompletedProcess(program.args, code, program.output, program.errors)
