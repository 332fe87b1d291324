"""Threads of the SDK leave SIGTERM and SIGINT to the application's threads.

The kernel hands a signal sent to the process to any thread that does not block
it, while Python runs the handler on the main thread only, once that thread runs
Python code again. A SIGTERM that lands on a sender thread of an idle
``multiprocessing`` pool worker, whose main thread waits in the task queue's lock,
is never handled: ``Pool.terminate()`` would wait for that worker forever. So every
thread the SDK starts blocks both signals (:func:`quiet_start`), and the batch
worker that OpenTelemetry starts again in a forked child does too
(:func:`quiet_fork_hooks`).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

#: The signals whose handlers run on the main thread, left to the application's threads.
_MAIN_THREAD_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_pthread_sigmask = getattr(signal, "pthread_sigmask", None)  # POSIX only


@contextlib.contextmanager
def quiet_start() -> Iterator[None]:
    """Threads started in this block (they inherit the starting thread's signal mask)
    block SIGTERM and SIGINT; this thread's own mask is restored at the end."""
    old = _block()
    try:
        yield
    finally:
        _restore(old)


def _block() -> set[signal.Signals] | None:
    if _pthread_sigmask is None:
        return None
    try:
        old: set[signal.Signals] = _pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
    except (OSError, ValueError):
        return None
    return old


def _restore(old: set[signal.Signals] | None) -> None:
    if old is not None and _pthread_sigmask is not None:
        with contextlib.suppress(OSError, ValueError):
            _pthread_sigmask(signal.SIG_SETMASK, old)


class _ForkMask:
    """The forking thread's mask around ``os.fork()``: OpenTelemetry's at-fork hook
    starts the batch worker anew in the child, from the forking thread, so the
    signals are blocked from the first of the SDK's ``before`` hooks to the last of
    its ``after`` hooks (one pair per queue, counted)."""

    def __init__(self) -> None:
        self.depth = 0
        self.saved: set[signal.Signals] | None = None

    def enter(self) -> None:
        if self.depth == 0:
            self.saved = _block()
        self.depth += 1

    def leave(self) -> None:
        self.depth = max(0, self.depth - 1)
        if self.depth == 0:
            saved, self.saved = self.saved, None
            _restore(saved)


_fork_mask = _ForkMask()


def quiet_fork_hooks() -> None:
    """Register one pair of at-fork hooks that keep the signals blocked while the
    child's threads are started again. Call it after the batch machinery (whose own
    hook starts its worker) is made, so that this ``after`` hook runs after it."""
    register = getattr(os, "register_at_fork", None)
    if register is not None:
        register(
            before=_fork_mask.enter,
            after_in_parent=_fork_mask.leave,
            after_in_child=_fork_mask.leave,
        )
