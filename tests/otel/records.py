"""Log records as the installed OpenTelemetry release builds and exports them.

The Logs API names a record with ``event_name`` from opentelemetry-api 1.35; before,
a record is named by its ``event.name`` attribute (as the Events API did). The SDK
hands exporters a ``ReadableLogRecord`` from 1.39, a ``LogData`` before.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

#: Whether this Logs API's LogRecord takes ``event_name`` (1.35 and later).
HAS_EVENT_NAME = "event_name" in inspect.signature(LogRecord.__init__).parameters
#: Whether this Logs API's LogRecord carries its context (1.35 and later).
HAS_CONTEXT = "context" in inspect.signature(LogRecord.__init__).parameters


def named_record(
    name: str, *, attributes: dict[str, Any] | None = None, **kwargs: Any
) -> LogRecord:
    """A LogRecord named ``name`` the way this release names records."""
    if HAS_EVENT_NAME:
        return LogRecord(event_name=name, attributes=attributes, **kwargs)
    return LogRecord(attributes={**(attributes or {}), "event.name": name}, **kwargs)


def readable(record: LogRecord) -> Any:
    """What a log exporter receives for ``record`` from this SDK."""
    try:
        from opentelemetry.sdk._logs import ReadableLogRecord
    except ImportError:  # before 1.39
        from opentelemetry.sdk._logs import LogData  # type: ignore[attr-defined,unused-ignore]

        with warnings.catch_warnings():
            # 1.38 warns that LogData goes away in 1.39 (the branch above covers 1.39+).
            warnings.simplefilter("ignore", UserWarning)
            return LogData(record, InstrumentationScope("tests"))
    return ReadableLogRecord(record, Resource.get_empty())
