"""Fixtures for the logging front doors: logging state saved and restored around each test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


def _loggers() -> list[logging.Logger]:
    tree = logging.root.manager.loggerDict.values()
    return [logging.root, *(lg for lg in tree if isinstance(lg, logging.Logger))]


def _ours(handler: logging.Handler) -> bool:
    # pytest moves its capture handlers in and out at every phase: never touch those.
    return not type(handler).__module__.startswith("_pytest")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Snapshot every logger and the record factory; put them back after the test.

    Handlers the test added are removed and closed (shutting down clients they own).
    """
    saved = {
        id(lg): (lg.level, list(lg.handlers), list(lg.filters), lg.propagate, lg.disabled)
        for lg in _loggers()
    }
    factory = logging.getLogRecordFactory()
    disable = logging.root.manager.disable
    yield
    logging.setLogRecordFactory(factory)
    logging.disable(disable)
    for lg in _loggers():
        level, handlers, filters, propagate, disabled = saved.get(
            id(lg), (logging.NOTSET, [], [], True, False)
        )
        for handler in list(lg.handlers):
            if handler not in handlers and _ours(handler):
                lg.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in lg.handlers and _ours(handler):
                lg.addHandler(handler)
        lg.setLevel(level)
        lg.filters[:] = filters
        lg.propagate = propagate
        lg.disabled = disabled


@pytest.fixture
def app_logger(restore_logging: None) -> logging.Logger:
    """A fresh INFO logger that does not propagate, so only the handlers a test adds see it."""
    logger = logging.getLogger("app.test")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
