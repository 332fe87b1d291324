"""A SIGTERM the main thread missed is handed to it again.

Python runs a signal handler on the main thread, the next time that thread runs
Python code: the interpreter's C-level handler only marks the signal. A main
thread blocked in a wait that the signal did not interrupt never gets there. Two
ways it happens: the kernel gave the signal to another thread (an application
thread that does not block it), or the signal came just before the wait began,
between the interpreter's last look at its marks and the system call (an idle
``multiprocessing`` pool worker, signalled by ``Pool.terminate()`` as it reaches
the task queue's lock). With SIGTERM's default action such a process died
anyway; with the SDK's handler in its place it would wait forever, and
``Pool.terminate()`` with it.

So where the SDK's handler is installed, the interpreter also writes the number
of each signal it catches to a pipe (``signal.set_wakeup_fd``) that a thread of
the SDK reads. When SIGTERM comes and the handler has not started a tenth of a
second later, that thread sends SIGTERM again, to the main thread itself: its
wait is interrupted with ``EINTR``, and the handler runs. A process that already
has a wakeup fd of its own (an asyncio loop with signal handlers) keeps it, and
goes without this; so does a platform without ``pthread_kill``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable

from databuddy_otel._runtime.quiet_threads import quiet_start

#: How long the handler may take to start before SIGTERM is sent again, and how often.
_GRACE = 0.1
_TRIES = 100


class Relay:
    """The pipe and the thread of one process (a forked child starts its own)."""

    def __init__(self, waiting: Callable[[], bool], started: Callable[[], int]) -> None:
        """``waiting()``: SIGTERM still needs the handler (ours, not running, no exit
        close under way). ``started()``: a count that moves each time the handler starts."""
        self._waiting = waiting
        self._started = started
        self._fds: tuple[int, int] | None = None
        #: When the relay last sent SIGTERM: the handler does not take it for a second one.
        self.sent_at = -1.0

    def start(self) -> None:
        """From the main thread: take the wakeup fd if it is free, and start the reader."""
        if not hasattr(signal, "pthread_kill"):
            return
        read, write = os.pipe()
        try:
            os.set_blocking(write, False)
            previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            if previous != -1:  # somebody else's: give it back
                signal.set_wakeup_fd(previous)
                raise ValueError("wakeup fd in use")
            thread = threading.Thread(
                target=self._run, args=(read,), name="databuddy-signals", daemon=True
            )
            with quiet_start():
                thread.start()
        except (ValueError, OSError, RuntimeError):
            for fd in (read, write):
                with contextlib.suppress(OSError):
                    os.close(fd)
            return
        self._fds = (read, write)

    def restart_in_child(self) -> None:
        """After a fork: the inherited pipe is the parent's, and its reader is not here."""
        if self._fds is None:
            return
        read, write = self._fds
        self._fds = None
        try:
            ours = signal.set_wakeup_fd(-1) == write
        except ValueError:
            return
        for fd in (read, write):
            with contextlib.suppress(OSError):
                os.close(fd)
        if ours:
            self.start()

    def _run(self, read: int) -> None:
        while True:
            try:
                data = os.read(read, 512)
            except OSError:
                return
            if not data:
                return
            if signal.SIGTERM in data:
                self._hand_over()

    def _hand_over(self) -> None:
        seen = self._started()
        main = threading.main_thread().ident
        for _ in range(_TRIES):
            time.sleep(_GRACE)
            if self._started() != seen or not self._waiting() or main is None:
                return
            self.sent_at = time.monotonic()
            try:
                signal.pthread_kill(main, signal.SIGTERM)
            except (OSError, ValueError):
                return
