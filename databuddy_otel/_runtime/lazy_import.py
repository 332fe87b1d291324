"""Imports made on first use, on any thread, that a fork never cuts in half.

``import databuddy_otel`` and ``Databuddy(...)`` load only what ``track()`` needs:
``requests`` (about 50 ms) is loaded by the first request, usually on a sender
thread. An import on one thread while another calls ``os.fork()`` would leave the
child a half-initialized module, so the fork waits for such an import to end (at
most the import's own time, and only when the two race).
"""

from __future__ import annotations

import importlib
import os
import threading
from types import ModuleType

_lock = threading.Lock()


def load(name: str) -> ModuleType:
    """``import name``, with a fork held off until it is done."""
    with _lock:
        return importlib.import_module(name)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=lambda: _lock.acquire(),
        after_in_parent=lambda: _lock.release(),
        after_in_child=_after_fork_in_child,
    )
