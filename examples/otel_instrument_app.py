"""An application with no Databuddy code, instrumented from the command line.

OpenTelemetry's zero-code setup builds the Databuddy exporters from the
environment (the ``databuddy`` entry points), so tagged span events and tagged
OpenTelemetry log events reach Databuddy::

    pip install /path/to/databuddy-otel opentelemetry-distro   # from a checkout
    DATABUDDY_CLIENT_ID=your-client-id \\
    OTEL_TRACES_EXPORTER=databuddy OTEL_LOGS_EXPORTER=databuddy OTEL_METRICS_EXPORTER=none \\
    opentelemetry-instrument python examples/otel_instrument_app.py

``DATABUDDY_API_URL`` points it elsewhere (``python -m databuddy_otel.devserver``
runs a local ingest server). The providers flush when the process exits.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry._logs import LogRecord, get_logger

tracer = trace.get_tracer("shop")
events = get_logger("shop")


def checkout(plan: str) -> None:
    with tracer.start_as_current_span("checkout") as span:
        span.add_event("purchase", {"databuddy.track": True, "plan": plan})
        span.add_event("cache_miss", {"key": "cart"})  # untagged: trace only
        events.emit(
            LogRecord(
                event_name="receipt_sent",
                attributes={"databuddy.track": True, "channel": "email"},
            )
        )


if __name__ == "__main__":
    checkout("pro")
    print("checkout done")
