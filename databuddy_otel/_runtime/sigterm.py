"""SIGTERM with events still queued: deliver them, then end the way the signal would have.

SIGTERM's default action ends a process on the spot: no ``atexit`` hook runs, so
what a client still holds would be lost without a word (a plain Python process in a
container, waitress, ``manage.py runserver --noreload``). When the first client is
made on the main thread and SIGTERM still has its default action, :func:`install`
puts a handler in its place that

1. closes every open queue within its ``shutdown_timeout``, on a helper thread it
   waits for (the interrupted code may hold one of the queue's locks), then
2. puts the default action back and raises SIGTERM again, so the process dies by
   the same signal, with the same exit status, as it would have without the SDK.

If an exit close is already running (a ``multiprocessing`` worker ending as its
pool terminates it), the handler lets it finish, and the signal ends the process
right after. A SIGTERM that a main thread blocked in a wait never sees (it landed
on another thread, or just before the wait) is sent to it again
(:mod:`databuddy_otel._runtime.signal_relay`): the handler never leaves a process
hanging where the default action would have ended it.

A handler somebody else installed is left alone, with one exception: uvicorn
installs its own while it imports the app (so a client made at import finds it),
and after its graceful shutdown it restores the default action and raises the
signal again, past every exit hook. There the handler is wrapped: uvicorn's runs
first, then, unless ``DatabuddyASGIMiddleware`` is going to flush on the lifespan
shutdown, the queues are flushed at once and a warning names the fix, since
events tracked during the graceful shutdown can still be lost.

When the application installs a handler of its own later, it replaces this one; a
handler that calls the one it replaced (as :func:`~databuddy_otel.lifecycle.exit_on_sigterm`
does) gets a flush, and the decision of what happens next stays with it. A second
SIGTERM during the flush ends the process at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from databuddy_otel._runtime import integrations
from databuddy_otel._runtime.quiet_threads import quiet_start
from databuddy_otel._runtime.signal_relay import Relay

logger = logging.getLogger("databuddy")

Handler = Callable[[int, "FrameType | None"], Any]

UVICORN_WARNING = (
    "Databuddy: SIGTERM under uvicorn without DatabuddyASGIMiddleware: the events queued "
    "so far were flushed now, but uvicorn ends this process by the signal after its "
    "graceful shutdown, when no exit hook runs, so events tracked from now on can be lost. "
    "Wrap the app: DatabuddyASGIMiddleware(app, client=client) flushes on the lifespan "
    "shutdown."
)


class _State:
    """What this process installed; a forked child inherits the handler and the state."""

    def __init__(self) -> None:
        self.installed = False
        self.handling = False
        #: How many times the handler started (the relay watches it move).
        self.started = 0
        self.lifespan_flush = False
        self.warned = False
        #: Threads running an exit close now, and a SIGTERM that waits for them.
        self.closing: set[int] = set()
        self.pending = False
        self.close_all: Callable[[], None] = _nothing
        self.flush_all: Callable[[], None] = _nothing
        self.bound: Callable[[], float] = lambda: 0.0


def _nothing() -> None:
    pass


_state = _State()


def _waiting() -> bool:
    """A SIGTERM still needs our handler: it is in place, idle, and no exit close runs."""
    state = _state
    return not (state.handling or state.closing) and (
        signal.getsignal(signal.SIGTERM) is _on_sigterm
    )


_relay = Relay(_waiting, lambda: _state.started)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_relay.restart_in_child)


def install(
    close_all: Callable[[], None], flush_all: Callable[[], None], bound: Callable[[], float]
) -> None:
    """Once per process, from the main thread: the SIGTERM handler, where one is safe.

    ``bound()`` is how long, in seconds, the handler waits for ``close_all`` or
    ``flush_all`` (which must bound themselves and never raise).
    """
    state = _state
    if (
        state.installed
        or not integrations.enabled("sigterm")
        or threading.current_thread() is not threading.main_thread()
    ):
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        state.installed = True
        state.close_all, state.flush_all, state.bound = close_all, flush_all, bound
        if current == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _relay.start()  # a SIGTERM the main thread's wait missed reaches it anyway
        elif callable(current) and _is_uvicorns(current):
            signal.signal(signal.SIGTERM, _after_uvicorns(current))
    except (ValueError, OSError, AttributeError):  # no signals here (an embedded interpreter)
        return


@contextlib.contextmanager
def exit_close() -> Iterator[None]:
    """Around an exit close (atexit, a finalizer, ``os._exit``): a SIGTERM that arrives
    meanwhile lets it finish, then ends the process by the signal.

    The handler cannot wait for a close that the thread it interrupted is running.
    """
    state = _state
    me = threading.get_ident()
    state.closing.add(me)
    try:
        yield
    finally:
        state.closing.discard(me)
        if state.pending and not state.closing:
            state.pending = False
            if threading.current_thread() is threading.main_thread():
                _die(signal.SIGTERM)
            else:  # only the main thread may set a handler: ours runs again there, and ends it
                os.kill(os.getpid(), signal.SIGTERM)


def lifespan_flush_ahead() -> None:
    """The ASGI middleware will flush on the lifespan shutdown: no flush at SIGTERM needed."""
    _state.lifespan_flush = True


def unwrap(handler: Any) -> Any:
    """The handler this module replaced, for code that chains to the one it finds."""
    if handler is _on_sigterm:
        return signal.SIG_DFL
    return getattr(handler, "databuddy_previous", handler)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    state = _state
    ours = signal.getsignal(signal.SIGTERM) is _on_sigterm
    if state.handling:
        if time.monotonic() - _relay.sent_at < 1.0:
            return  # the relay's copy of the first one
        _die(signum)  # a second SIGTERM: stop waiting
    state.started += 1
    if ours and not integrations.enabled("sigterm"):
        _die(signum)  # switched off since: the default action
    if state.closing:  # an exit close is under way: it ends the process once done
        state.pending = ours
        return
    state.handling = True
    try:
        _bounded(state.close_all if ours else state.flush_all, state.bound())
    finally:
        state.handling = False
    if ours:
        _die(signum)
    # Called by a handler that chained to this one: what happens next is its call.


def _die(signum: int) -> None:
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _is_uvicorns(handler: Any) -> bool:
    return str(getattr(handler, "__module__", "")).startswith("uvicorn.")


def _after_uvicorns(previous: Handler) -> Handler:
    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        previous(signum, frame)
        state = _state
        if (
            state.lifespan_flush
            or state.handling
            or state.closing
            or not integrations.enabled("sigterm")
        ):
            return
        state.handling = True
        try:
            _bounded(state.flush_all, state.bound())
        finally:
            state.handling = False
        if not state.warned:
            state.warned = True
            logger.warning(UVICORN_WARNING)

    on_sigterm.databuddy_previous = previous  # type: ignore[attr-defined]
    return on_sigterm


def _bounded(work: Callable[[], None], seconds: float) -> None:
    """Run ``work`` on a helper thread and wait for it at most ``seconds``; never raises."""
    try:
        helper = threading.Thread(target=work, name="databuddy-sigterm", daemon=True)
        with quiet_start():
            helper.start()
    except RuntimeError:  # no new thread at interpreter shutdown (3.12+)
        try:
            work()
        except Exception:
            logger.exception("Databuddy flush on SIGTERM failed")
        return
    helper.join(seconds)
