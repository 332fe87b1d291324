"""What the SDK wires into the process by itself, each part named and switchable.

A switch is read when its hook runs, not when the hook is installed, so turning one
off with ``init(integrations={...})`` takes effect whenever it is called:

=================== ======= =============================================================
name                default what it does
=================== ======= =============================================================
``sigterm``         on      SIGTERM with its default action: flush, then die by the signal
``multiprocessing`` on      a ``multiprocessing`` child closes its queues as it ends
``fork``            on      a child forked with a client open closes them at ``os._exit``
``rq``              on      so does an RQ work-horse, which makes its client after the fork
``celery``          on      Celery's prefork children close them on ``worker_process_shutdown``
``logging``         off     every logger's tagged records become events, with no handler set
=================== ======= =============================================================

Switched off, each behaves as if the SDK were absent: SIGTERM ends the process at
once, a child's queued events stay unsent unless it flushes (or a spool keeps them).
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Mapping
from typing import Literal, get_args

IntegrationName = Literal["sigterm", "multiprocessing", "fork", "rq", "celery", "logging"]

NAMES: tuple[str, ...] = get_args(IntegrationName)
_DEFAULT_OFF = frozenset({"logging"})

_lock = threading.Lock()
_on: dict[str, bool] = {name: name not in _DEFAULT_OFF for name in NAMES}
#: The handler the ``logging`` integration offers each record to, while it is on.
_handler: logging.Handler | None = None
_patched = False


def enabled(name: str) -> bool:
    """Whether the integration ``name`` is on (read by its hook each time it runs)."""
    return _on[name]


def current() -> dict[str, bool]:
    """Every integration and whether it is on."""
    with _lock:
        return dict(_on)


def check(switches: Mapping[IntegrationName, bool] | Mapping[str, bool]) -> dict[str, bool]:
    """``switches`` as a plain dict; a clear error for an unknown name or a non-bool."""
    checked: dict[str, bool] = {}
    for name, on in dict(switches).items():
        if name not in NAMES:
            close = difflib.get_close_matches(str(name), NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"integrations: unknown name {name!r}{hint}; the names are {', '.join(NAMES)}"
            )
        if not isinstance(on, bool):
            raise TypeError(f"integrations: {name!r} must be True or False, not {on!r}")
        checked[name] = on
    return checked


def switch(switches: Mapping[IntegrationName, bool] | Mapping[str, bool]) -> None:
    """Turn integrations on or off (the names not given keep their state)."""
    checked = check(switches)
    with _lock:
        _on.update(checked)
        logging_on = _on["logging"]
    _offer_records(logging_on)


def _offer_records(on: bool) -> None:
    """On: every record a logger hands to its handlers is offered to a
    ``DatabuddyHandler`` first. No handler is added to the tree, so ``basicConfig()``
    and Python's last-resort output behave as before; the loggers' levels still
    decide which records exist at all."""
    global _handler, _patched
    if on and _handler is None:
        # The logging package depends on this one: imported only when asked for.
        from databuddy_logging import DatabuddyHandler

        _handler = DatabuddyHandler()  # follows the default client
        if not _patched:
            _patched = True
            original = logging.Logger.callHandlers

            def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
                handler = _handler
                if handler is not None:
                    handler.handle(record)  # never raises; untagged records cost a lookup
                original(self, record)

            logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    elif not on:
        _handler = None
