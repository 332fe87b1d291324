"""Process exit: every queue still open is closed, and so flushed, before the process ends.

The registry holds each open queue strongly until it is closed, whether or not
the application keeps its client: a client created in a function and dropped
still delivers. These hooks close them (each close bounded by the queue's
``shutdown_timeout``, all of them by the longest one):

* ``atexit``: a normal interpreter exit (``sys.exit``, the end of a script, a
  gunicorn worker, a ``spawn`` child). The close runs on the exiting thread and
  starts no thread, so it works on Python 3.12+, which refuses new threads at
  interpreter shutdown.
* a ``multiprocessing`` finalizer in its children: they end with ``os._exit``
  (``fork`` and ``forkserver``), which runs no ``atexit`` hook; the finalizer runs
  when the child ends normally (a pool closed and joined, an executor shut down,
  a ``Process`` whose target returns). It is registered through multiprocessing's
  after-fork registry, which each child runs as it starts its target: after the
  main module was imported in a ``spawn`` or ``forkserver`` child (a client made
  at import) and after the finalizers inherited through ``fork`` were cleared.
* ``os._exit`` itself, in a child forked while a client was open, and in an RQ
  work-horse (which imports the job's module, and so makes the client, after the
  fork): job runners end their forked work processes with it, past every other
  hook. There ``os._exit`` closes the queues first, once, then exits with the
  status it was given. A forked child's queue starts empty (the parent's events
  stay with the parent), so nothing is sent twice. Any other process keeps the
  plain ``os._exit``, which there means "exit now, skip the clean-up".
* Celery's ``worker_process_shutdown`` signal in its prefork pool processes:
  billiard ends them with ``os._exit`` before any finalizer, but Celery sends
  that signal in the child first. (A bare ``billiard.Pool`` offers no such hook:
  flush at the end of each task there.)
* SIGTERM, where it still has its default action (:mod:`databuddy_otel._runtime.sigterm`).
* a client the application dropped: its queue is closed on a short-lived
  thread as soon as the client is garbage-collected, so per-request clients do
  not pile up threads.

A child killed outright (``Pool.terminate()`` without a handler, SIGKILL) runs
nothing: that is the spool's job.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, NoReturn

from databuddy_otel._runtime import integrations, sigterm
from databuddy_otel._runtime.quiet_threads import quiet_start

if TYPE_CHECKING:
    from databuddy_otel._queue.event_queue import EventQueue

logger = logging.getLogger("databuddy")

#: Where multiprocessing-style packages keep their finalizer machinery.
_MP_UTILS = ("multiprocessing.util", "billiard.util")
_celery_connected = False
#: Job runners whose work processes end with ``os._exit`` and may import the app only
#: there (an RQ work-horse imports the job's module after the fork, so its client is
#: made in the child): with one of them loaded, ``os._exit`` closes the queues first.
_OS_EXIT_RUNNERS = ("rq.worker",)

_open: set[EventQueue] = set()
_lock = threading.Lock()
#: What ``open_queues()`` returns, replaced (never changed) under ``_lock``: the
#: SIGTERM handler and its helper thread read it without the lock, which the
#: interrupted thread may be holding.
_snapshot: tuple[EventQueue, ...] = ()
_hooked_pid = 0
_finalized_pids: set[tuple[str, int]] = set()
#: The interpreter's own ``os._exit``, and the pid whose ``os._exit`` closed the queues.
_real_exit = os._exit
_exited_pid = 0


class _Token:
    """What multiprocessing's after-fork registry holds weakly (this module keeps it alive)."""


_TOKEN = _Token()


def register(queue: EventQueue) -> None:
    """Keep ``queue`` until it is closed, and close it when the process ends."""
    global _snapshot
    with _lock:
        _open.add(queue)
        _snapshot = tuple(_open)
        _install_hooks()
    _finalize_in_pool_child()
    _finalize_in_children()
    _connect_celery()
    if any(name in sys.modules for name in _OS_EXIT_RUNNERS):
        _close_on_os_exit()
    sigterm.install(close_all, flush_all, _longest_timeout)


def unregister(queue: EventQueue) -> None:
    global _snapshot
    # A SIGTERM handler's close can run while the thread it interrupted holds the lock:
    # then the closed queue stays listed (closing it again returns at once).
    if not _lock.acquire(timeout=0.2):
        return
    try:
        _open.discard(queue)
        _snapshot = tuple(_open)
    finally:
        _lock.release()


def open_queues() -> list[EventQueue]:
    return list(_snapshot)


def close_all() -> None:
    """Close every open queue within its ``shutdown_timeout``; never raises.

    The queues share one deadline, the longest of their timeouts: several clients
    do not add their timeouts up.
    """
    with sigterm.exit_close():
        queues = open_queues()
        end = time.monotonic() + max((q.settings.shutdown_timeout for q in queues), default=0.0)
        for queue in queues:
            try:
                left = max(0.0, end - time.monotonic())
                queue.close(min(queue.settings.shutdown_timeout, left))
            except Exception:
                logger.exception("Databuddy exit flush failed")


def flush_all() -> None:
    """Flush every open queue within one ``shutdown_timeout`` (the longest), for a process
    that ends by a signal next, when nothing closes them; never raises."""
    queues = open_queues()
    end = time.monotonic() + max((q.settings.shutdown_timeout for q in queues), default=0.0)
    for queue in queues:
        try:
            result = queue.flush(max(0.0, end - time.monotonic()))
            if not result.success and result.error:
                logger.warning("Databuddy flush on SIGTERM: %s", result.error)
        except Exception:
            logger.exception("Databuddy flush on SIGTERM failed")
    release_settled()


def release_settled() -> None:
    """The process ends next without closing its queues (uvicorn's re-raised SIGTERM):
    delete the spool files that hold nothing left to send; never raises."""
    for queue in open_queues():
        try:
            queue.release_settled()
        except Exception:
            logger.exception("Databuddy could not release its spool files")


def _longest_timeout() -> float:
    """How long the exit flush of every open queue may take, with a request in flight."""
    timeouts = [q.settings.shutdown_timeout for q in open_queues()]
    return max(timeouts, default=0.0) + 1.5


def close_when_dropped(owner: object, queue: EventQueue) -> None:
    """Close ``queue`` in the background once ``owner`` (the client) is garbage-collected."""
    finalizer = weakref.finalize(owner, _close_dropped, queue)
    finalizer.atexit = False  # at exit, close_all does it


def _close_dropped(queue: EventQueue) -> None:
    if queue.closed:
        return
    # Not a daemon: the interpreter waits for it (bounded by shutdown_timeout). No new
    # threads at interpreter shutdown: close_all closes it then.
    with contextlib.suppress(RuntimeError), quiet_start():
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
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _before_fork() -> None:
    _connect_celery()  # a Celery worker imports the app, then forks its pool
    _finalize_in_children()


def _finalize_in_children() -> None:
    """Once per process and package: a finalizer in each multiprocessing child it starts.

    multiprocessing empties its finalizer registry in each child, after the
    os.fork hooks ran and after a spawn or forkserver child imported the main
    module; its own after-fork registry, run next, is how to get one in.
    """
    for name in _MP_UTILS:
        util: Any = sys.modules.get(name)
        if util is not None and (name, os.getpid()) not in _finalized_pids:
            _finalized_pids.add((name, os.getpid()))
            util.register_after_fork(_TOKEN, _in_pool_child_of(name))


def _in_pool_child_of(name: str) -> Any:
    def register_finalizer(_token: object) -> None:
        util: Any = sys.modules.get(name)
        key = (name + ":child", os.getpid())
        if util is not None and key not in _finalized_pids:
            _finalized_pids.add(key)
            util.Finalize(None, _close_in_pool_child, exitpriority=10)

    return register_finalizer


def _close_in_pool_child() -> None:
    if integrations.enabled("multiprocessing"):
        close_all()


def _after_fork_in_child() -> None:
    """A child forked while a client was open ends through ``os._exit``: close first."""
    if _open:
        _close_on_os_exit()


def _close_on_os_exit() -> None:
    if os._exit is _real_exit:
        os._exit = _close_then_exit


def _close_then_exit(status: int) -> NoReturn:
    """``os._exit`` in a forked child: close every queue (once, bounded), then exit."""
    global _exited_pid
    if _exited_pid != os.getpid() and integrations.enabled(_os_exit_integration()):
        _exited_pid = os.getpid()
        # The process is ending: exit with its status whatever happened on the way.
        with contextlib.suppress(BaseException):
            close_all()
    _real_exit(status)


def _os_exit_integration() -> str:
    """Which switch governs this process's ``os._exit`` close."""
    if any(name in sys.modules for name in _OS_EXIT_RUNNERS):
        return "rq"
    process: Any = sys.modules.get("multiprocessing.process")
    parent = getattr(process, "parent_process", None)
    if parent is not None and parent() is not None:
        return "multiprocessing"
    return "fork"


def _connect_celery() -> None:
    """Close every queue on Celery's ``worker_process_shutdown`` (once per process tree)."""
    global _celery_connected
    signals: Any = sys.modules.get("celery.signals")
    if _celery_connected or signals is None:
        return
    _celery_connected = True
    signals.worker_process_shutdown.connect(_on_celery_shutdown, weak=False)


def _on_celery_shutdown(*args: Any, **kwargs: Any) -> None:
    if integrations.enabled("celery"):
        close_all()


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
        util.Finalize(None, _close_in_pool_child, exitpriority=10)
