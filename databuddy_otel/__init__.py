"""Server-side Databuddy analytics on OpenTelemetry's batch machinery.

>>> from databuddy_otel import Databuddy
>>> client = Databuddy(client_id="...")  # doctest: +SKIP
>>> client.track(name="user_signup", properties={"plan": "pro"})  # doctest: +SKIP

The OpenTelemetry exporters, the lifecycle helpers and the local ingest server
are importable from here too; they load on first use, so ``import databuddy_otel``
does not pay for the tracing SDK or the HTTP server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from databuddy_otel._version import __version__
from databuddy_otel.client import Databuddy
from databuddy_otel.context import bind_ids, current_ids
from databuddy_otel.default import (
    batch,
    flush,
    get_client,
    init,
    integrations,
    shutdown,
    track,
)
from databuddy_otel.ids import new_anonymous_id, new_session_id
from databuddy_otel.models import (
    BatchEventInput,
    BatchEventResponse,
    CustomEventInput,
    EventResponse,
    HttpAnswer,
    Stats,
    TrackFields,
    Transport,
    TransportError,
    Undelivered,
)

if TYPE_CHECKING:
    from databuddy_otel.devserver import DevServer
    from databuddy_otel.lifecycle import exit_on_sigterm, flush_after
    from databuddy_otel.log_exporter import DatabuddyBaggageLogProcessor, DatabuddyLogExporter
    from databuddy_otel.sampling import AlwaysRecordSampler, DatabuddySpanProcessor
    from databuddy_otel.span_exporter import DatabuddyBaggageProcessor, DatabuddySpanExporter
    from databuddy_otel.web import DatabuddyASGIMiddleware, DatabuddyWSGIMiddleware

_LAZY = {
    "AlwaysRecordSampler": "databuddy_otel.sampling",
    "DatabuddyASGIMiddleware": "databuddy_otel.web",
    "DatabuddyBaggageLogProcessor": "databuddy_otel.log_exporter",
    "DatabuddyBaggageProcessor": "databuddy_otel.span_exporter",
    "DatabuddyLogExporter": "databuddy_otel.log_exporter",
    "DatabuddySpanExporter": "databuddy_otel.span_exporter",
    "DatabuddySpanProcessor": "databuddy_otel.sampling",
    "DatabuddyWSGIMiddleware": "databuddy_otel.web",
    "DevServer": "databuddy_otel.devserver",
    "exit_on_sigterm": "databuddy_otel.lifecycle",
    "flush_after": "databuddy_otel.lifecycle",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'databuddy_otel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AlwaysRecordSampler",
    "BatchEventInput",
    "BatchEventResponse",
    "CustomEventInput",
    "Databuddy",
    "DatabuddyASGIMiddleware",
    "DatabuddyBaggageLogProcessor",
    "DatabuddyBaggageProcessor",
    "DatabuddyLogExporter",
    "DatabuddySpanExporter",
    "DatabuddySpanProcessor",
    "DatabuddyWSGIMiddleware",
    "DevServer",
    "EventResponse",
    "HttpAnswer",
    "Stats",
    "TrackFields",
    "Transport",
    "TransportError",
    "Undelivered",
    "__version__",
    "batch",
    "bind_ids",
    "current_ids",
    "exit_on_sigterm",
    "flush",
    "flush_after",
    "get_client",
    "init",
    "integrations",
    "new_anonymous_id",
    "new_session_id",
    "shutdown",
    "track",
]
