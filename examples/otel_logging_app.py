"""Standard ``logging`` calls as Databuddy events, with no Databuddy code in the app.

OpenTelemetry's logging auto-instrumentation turns every record into an OpenTelemetry
log record; the ``databuddy`` logs exporter sends the tagged and named ones::

    pip install /path/to/databuddy-otel opentelemetry-distro   # from a checkout
    DATABUDDY_CLIENT_ID=your-client-id \\
    OTEL_LOGS_EXPORTER=databuddy OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none \\
    OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true \\
    opentelemetry-instrument python examples/otel_logging_app.py

A record is an event when its ``extra`` has ``"databuddy.track": True`` and an
``"event.name"``; its other ``extra`` keys become properties (so do the ``code.*``
attributes the instrumentation adds, unless a client middleware drops them). The
record must pass the logger's level: ``opentelemetry-instrument`` adds its handler to
the root logger, and ``logging.basicConfig`` then changes nothing, so set the level
on the logger itself.
"""

from __future__ import annotations

import logging

log = logging.getLogger("shop")
log.setLevel(logging.INFO)


def signup(plan: str) -> None:
    log.info("signup", extra={"databuddy.track": True, "event.name": "signup", "plan": plan})
    log.info("a plain log line, not an event")


if __name__ == "__main__":
    signup("pro")
