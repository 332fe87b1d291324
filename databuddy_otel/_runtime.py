"""Threads and process exit: the client's plumbing that is not about events."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger("databuddy")


class _ShutsDown(Protocol):
    def shutdown(self, timeout: float | None = None) -> Any: ...


def run_bounded(fn: Callable[[], Any], timeout: float) -> bool:
    """Run ``fn()`` on a helper thread; ``True`` if it finished within ``timeout`` s.

    Used where OpenTelemetry offers no timeout (``force_flush`` exports
    everything on the calling thread): the work goes on after a timeout, so
    nothing queued is dropped, but the caller gets its time back.
    """
    done = threading.Event()

    def run() -> None:
        try:
            fn()
        except Exception:
            logger.exception("Databuddy background work failed")
        finally:
            done.set()

    threading.Thread(target=run, name="databuddy-flush", daemon=True).start()
    return done.wait(timeout)


def in_event_loop() -> bool:
    """True on a thread that is running an asyncio event loop."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # not imported: no loop can be running
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def enable_debug(log: logging.Logger) -> None:
    """``debug=True``: DEBUG on the SDK's logger, with a stderr handler if nothing logs."""
    log.setLevel(logging.DEBUG)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s databuddy %(levelname)s %(message)s"))
        log.addHandler(handler)


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_exit_lock = threading.Lock()
_exit_registered = False


def shutdown_at_exit(client: _ShutsDown) -> None:
    """Shut ``client`` down (a short, bounded flush) when the interpreter exits."""
    global _exit_registered
    _live.add(client)
    with _exit_lock:
        if not _exit_registered:
            atexit.register(_shutdown_all)
            _exit_registered = True


def _shutdown_all() -> None:
    for client in list(_live):
        try:
            client.shutdown()
        except Exception:
            logger.debug("Databuddy exit flush failed", exc_info=True)
