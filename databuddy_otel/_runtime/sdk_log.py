"""The SDK's own log: the ``databuddy`` logger, ``debug=True``, and ``logger=``.

Every module logs through a :class:`Log`. By default that is the ``databuddy``
logger of the standard library; ``logger=`` may name another ``logging.Logger``,
a ``logging.LoggerAdapter``, or any object with ``debug``, ``info``, ``warning``
and ``error`` methods taking one message (as the Node SDK accepts any logger
object). Such an object receives each message already formatted.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Protocol


class Log(Protocol):
    """What the SDK calls on its logger: ``%``-style message and arguments."""

    def debug(self, msg: str, *args: object) -> object: ...

    def info(self, msg: str, *args: object) -> object: ...

    def warning(self, msg: str, *args: object) -> object: ...

    def error(self, msg: str, *args: object) -> object: ...

    def exception(self, msg: str, *args: object) -> object: ...


_METHODS = ("debug", "info", "warning", "error")


class _Foreign:
    """A logger of another kind: each message is formatted before it is handed over."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def _emit(self, method: str, msg: str, args: tuple[object, ...]) -> None:
        try:
            text = msg % args if args else msg
        except Exception:
            text = f"{msg} {args!r}"
        getattr(self.target, method)(text)

    def debug(self, msg: str, *args: object) -> None:
        self._emit("debug", msg, args)

    def info(self, msg: str, *args: object) -> None:
        self._emit("info", msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit("warning", msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit("error", msg, args)

    def exception(self, msg: str, *args: object) -> None:
        # Called from an ``except`` block, as logging.Logger.exception is.
        self._emit("error", msg + "\n%s", (*args, traceback.format_exc().rstrip()))


def resolve(logger: object | None, debug: bool) -> Log:
    """The :class:`Log` for a client's ``logger=`` and ``debug=`` settings.

    Raises ``TypeError`` when ``logger`` lacks a method the SDK calls.
    """
    if logger is None:
        log: Log = logging.getLogger("databuddy")
    elif isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        log = logger
    else:
        missing = [m for m in _METHODS if not callable(getattr(logger, m, None))]
        if missing:
            raise TypeError(
                f"logger must be a logging.Logger, a LoggerAdapter or an object with "
                f"{', '.join(_METHODS)} methods; {type(logger).__name__} has no "
                f"{', '.join(missing)}"
            )
        log = _Foreign(logger)
    if debug:
        enable_debug(log)
    return log


def enable_debug(log: Log) -> None:
    """``debug=True``: DEBUG on a standard logger, with a stderr handler if nothing logs.

    A logger of another kind keeps the levels its owner gave it.
    """
    target = log.logger if isinstance(log, logging.LoggerAdapter) else log
    if not isinstance(target, logging.Logger):
        return
    target.setLevel(logging.DEBUG)
    if not target.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s databuddy %(levelname)s %(message)s"))
        target.addHandler(handler)
