"""The watchdog: one thread per process that cuts HTTP requests past their total deadline.

``requests`` (through ``http.client``) bounds each socket operation, not a whole
request: a server that sends one byte every half second, in its headers or its
body, never trips a read timeout of two seconds. Each request the transport
sends is registered here with its deadline; when the deadline passes, the
watchdog shuts the request's socket down, and the thread blocked on it gets an
error at once. The thread sleeps until the earliest deadline, so a request that
ends in time costs a dictionary insert and delete, and no wake-up.

The thread starts with the first transport, at construction, because Python
3.12 refuses new threads while the interpreter finalizes, which is exactly when
the exit flush may send its first request. Where it cannot start, requests are
bounded per socket operation only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

from databuddy_otel._runtime.quiet_threads import quiet_start

#: Seconds the thread sleeps when nothing is registered (one wake-up per period).
_IDLE = 1.0


class Watch:
    """One request's deadline, and the connection to cut when it passes."""

    __slots__ = ("connection", "cut", "deadline", "sock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: Any = None
        self.sock: Any = None
        self.cut = False

    def expire(self) -> None:
        """Shut the connection's socket down (the blocked reader sees the end at once)."""
        self.cut = True
        # A connection hands its socket to the response when the server closes after
        # answering: the socket seen when the answer started is the one to cut then.
        sock = getattr(self.connection, "sock", None) or self.sock
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    def __init__(self) -> None:
        self._init()

    def _init(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._watches: dict[int, Watch] = {}
        self._wake_at = float("inf")
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._local = threading.local()

    def ensure_running(self) -> bool:
        """Start the thread (once per process); ``False`` where no thread can start."""
        if self._pid != os.getpid():
            self._init()  # a forked child: the parent's thread is not here
        if self._thread is not None:
            return True
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="databuddy-watchdog", daemon=True)
                try:
                    with quiet_start():
                        thread.start()
                except RuntimeError:  # interpreter shutdown
                    return False
                self._thread = thread
        return True

    def watch(self, seconds: float) -> Watch:
        """Register a request of this thread that must end within ``seconds``."""
        watch = Watch(time.monotonic() + seconds)
        self._local.current = watch
        if not self.ensure_running():
            return watch
        with self._lock:
            self._watches[id(watch)] = watch
            if watch.deadline < self._wake_at:
                self._changed.notify()
        return watch

    def attach(self, connection: Any) -> None:
        """The connection this thread's current request goes out on."""
        watch = getattr(self._local, "current", None)
        if watch is not None:
            watch.connection = connection
            if watch.cut:
                watch.expire()

    def answer_started(self, connection: Any) -> None:
        """The current request's answer is about to be read from ``connection``'s socket."""
        watch = getattr(self._local, "current", None)
        if watch is not None:
            watch.sock = getattr(connection, "sock", None)
            if watch.cut:
                watch.expire()

    def release(self, watch: Watch) -> None:
        """The request ended (in time or not)."""
        self._local.current = None
        with self._lock:
            self._watches.pop(id(watch), None)

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                due = [w for w in self._watches.values() if w.deadline <= now]
                for watch in due:
                    del self._watches[id(watch)]
                    watch.expire()
                nearest = min((w.deadline for w in self._watches.values()), default=now + _IDLE)
                self._wake_at = nearest
                self._changed.wait(max(0.0, nearest - now))


#: The process's watchdog, shared by every transport.
WATCHDOG = Watchdog()
