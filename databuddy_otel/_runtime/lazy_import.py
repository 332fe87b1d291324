"""Imports made on first use, on any thread, that a fork never cuts in half.

``import databuddy_otel`` and ``Databuddy(...)`` load only what ``track()`` needs:
``requests`` (about 50 ms) is loaded by the first request, usually on a sender
thread. An import on one thread while another calls ``os.fork()`` would leave the
child a half-initialized module, so the fork waits for such an import to end (at
most the import's own time, and only when the two race).

A module named with :func:`before_fork` is loaded by the parent before its first
fork: children forked per job (RQ's work-horses, a fork-per-task loop) inherit it
instead of each paying for the import at its first request.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from types import ModuleType

_lock = threading.Lock()
_before_fork: set[str] = set()


def load(name: str) -> ModuleType:
    """``import name``, with a fork held off until it is done."""
    with _lock:
        return importlib.import_module(name)


def before_fork(name: str) -> None:
    """Have ``name`` loaded in this process before it forks (if it is not by then)."""
    _before_fork.add(name)


def _prepare_fork() -> None:
    _lock.acquire()  # an import under way on another thread ends first
    for name in tuple(_before_fork):
        if name not in sys.modules:
            with contextlib.suppress(Exception):  # the first request reports it
                importlib.import_module(name)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_prepare_fork,
        after_in_parent=lambda: _lock.release(),
        after_in_child=_after_fork_in_child,
    )
