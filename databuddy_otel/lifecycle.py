"""Flushing at the edges of a process's life: serverless handlers and SIGTERM.

A serverless platform may freeze the process as soon as the handler returns,
so queued events must leave before that: :class:`flush_after` flushes in a
``finally`` block, within a bound, as a decorator (sync or async) or a
``with`` block. Containers stop with SIGTERM, whose default action ends the
process without running ``atexit``; the SDK's own handler (:mod:`databuddy_otel._runtime.sigterm`)
flushes and then lets the signal end the process, and :func:`exit_on_sigterm`
turns it into a normal exit instead, so the client's exit flush runs there.
"""

from __future__ import annotations

import functools
import inspect
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar, cast

from databuddy_otel._runtime import sigterm
from databuddy_otel.client import Databuddy

F = TypeVar("F", bound=Callable[..., Any])


class flush_after:
    """Flush ``client`` when the wrapped handler (or ``with`` block) ends, however it ends.

    >>> @flush_after(client, timeout=2.0)          # doctest: +SKIP
    ... def handler(event, context): ...
    """

    def __init__(self, client: Databuddy, *, timeout: float = 5.0) -> None:
        self.client = client
        self.timeout = timeout

    def __enter__(self) -> Databuddy:
        return self.client

    def __exit__(self, *exc_info: object) -> None:
        self.client.flush(timeout=self.timeout)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await fn(*args, **kwargs)
                finally:
                    await self.client.aflush(timeout=self.timeout)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return cast(F, wrapper)


def exit_on_sigterm(exit_code: int = 0) -> None:
    """Make SIGTERM end the process through ``sys.exit`` so ``atexit`` flushes run.

    Call once, from the main thread, at start-up. An existing non-default
    handler is kept and called first (not the SDK's own SIGTERM flush: the exit
    flush does its work).
    """
    previous = sigterm.unwrap(signal.getsignal(signal.SIGTERM))

    def handle(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        sys.exit(exit_code)

    signal.signal(signal.SIGTERM, handle)
