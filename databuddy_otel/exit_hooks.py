"""Process exit: every queue still open is closed, and so flushed, before the process ends.

The registry holds each open queue strongly until it is closed, whether or not
the application keeps its client: a client created in a function and dropped
still delivers. Three hooks close them:

* ``atexit``: a normal interpreter exit (``sys.exit``, the end of a script, a
  gunicorn worker, SIGTERM turned into an exit by ``exit_on_sigterm``). The
  close runs on the exiting thread and starts no thread, so it works on
  Python 3.12+, which refuses new threads at interpreter shutdown.
* a ``multiprocessing`` finalizer in forked children (registered through
  ``multiprocessing.util`` and, when loaded, celery's ``billiard.util``): those
  children end with ``os._exit``, which runs no ``atexit`` hook; the finalizer
  runs when the child ends normally (a pool closed and joined, a ``Process``
  whose target returns). A child killed outright (``terminate()``, SIGKILL)
  runs nothing: that is the spool's job. Celery's prefork pool processes do not
  run it either: billiard's ``Worker._do_exit`` calls ``os._exit`` before
  ``util._exit_function`` runs, so Celery needs a ``worker_process_shutdown``
  handler that calls ``client.flush()``.
* a client the application dropped: its queue is closed on a short-lived
  thread as soon as the client is garbage-collected, so per-request clients do
  not pile up threads.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from databuddy_otel.event_queue import EventQueue

logger = logging.getLogger("databuddy")

#: Where multiprocessing-style packages keep their finalizer machinery.
_MP_UTILS = ("multiprocessing.util", "billiard.util")

_open: set[EventQueue] = set()
_lock = threading.Lock()
_hooked_pid = 0
_finalized_pids: set[tuple[str, int]] = set()


class _Token:
    """What multiprocessing's after-fork registry holds weakly (this module keeps it alive)."""


_TOKEN = _Token()


def register(queue: EventQueue) -> None:
    """Keep ``queue`` until it is closed, and close it when the process ends."""
    with _lock:
        _open.add(queue)
        _install_hooks()
    _finalize_in_pool_child()


def unregister(queue: EventQueue) -> None:
    with _lock:
        _open.discard(queue)


def open_queues() -> list[EventQueue]:
    with _lock:
        return list(_open)


def close_all() -> None:
    """Close every open queue within its ``shutdown_timeout``; never raises."""
    for queue in open_queues():
        try:
            queue.close(queue.settings.shutdown_timeout)
        except Exception:
            logger.exception("Databuddy exit flush failed")


def close_when_dropped(owner: object, queue: EventQueue) -> None:
    """Close ``queue`` in the background once ``owner`` (the client) is garbage-collected."""
    finalizer = weakref.finalize(owner, _close_dropped, queue)
    finalizer.atexit = False  # at exit, close_all does it


def _close_dropped(queue: EventQueue) -> None:
    if queue.closed:
        return
    # Not a daemon: the interpreter waits for it (bounded by shutdown_timeout). No new
    # threads at interpreter shutdown: close_all closes it then.
    with contextlib.suppress(RuntimeError):
        threading.Thread(
            target=queue.close,
            args=(queue.settings.shutdown_timeout,),
            name="databuddy-close",
        ).start()


def _install_hooks() -> None:
    """Under the lock: the atexit hook once, the fork hook once per process."""
    global _hooked_pid
    if _hooked_pid:
        return
    _hooked_pid = os.getpid()
    atexit.register(close_all)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork)


def _before_fork() -> None:
    # multiprocessing empties its finalizer registry in each child it starts, after
    # the os.fork hooks ran; its own after-fork registry is how to get one in.
    for name in _MP_UTILS:
        util: Any = sys.modules.get(name)
        if util is not None and (name, os.getpid()) not in _finalized_pids:
            _finalized_pids.add((name, os.getpid()))
            util.register_after_fork(_TOKEN, _in_pool_child_of(name))


def _in_pool_child_of(name: str) -> Any:
    def register_finalizer(_token: object) -> None:
        util: Any = sys.modules.get(name)
        if util is not None:
            util.Finalize(None, close_all, exitpriority=10)

    return register_finalizer


def _finalize_in_pool_child() -> None:
    """A client created inside a multiprocessing child: register the finalizer now."""
    for name in _MP_UTILS:
        util: Any = sys.modules.get(name)
        process: Any = sys.modules.get(name.replace(".util", ".process"))
        if util is None or process is None:
            continue
        key = (name + ":child", os.getpid())
        parent = getattr(process, "parent_process", None)
        if key in _finalized_pids or parent is None or parent() is None:
            continue
        _finalized_pids.add(key)
        util.Finalize(None, close_all, exitpriority=10)
