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

It runs on every OpenTelemetry release the package supports (1.25 on): before
opentelemetry-api 1.35 a ``LogRecord`` has no ``event_name`` and does not take the
current span's ids by itself, so :func:`named_record` names it with the
``event.name`` attribute and copies the ids.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry._logs import LogRecord, get_logger

tracer = trace.get_tracer("shop")
events = get_logger("shop")


def named_record(name: str, attributes: dict[str, object]) -> LogRecord:
    """A log record named ``name``, in the current span."""
    try:
        return LogRecord(event_name=name, attributes=attributes)
    except TypeError:  # opentelemetry-api before 1.35
        span = trace.get_current_span().get_span_context()
        return LogRecord(
            trace_id=span.trace_id,
            span_id=span.span_id,
            trace_flags=span.trace_flags,
            attributes={**attributes, "event.name": name},
        )


def checkout(plan: str) -> None:
    with tracer.start_as_current_span("checkout") as span:
        span.add_event("purchase", {"databuddy.track": True, "plan": plan})
        span.add_event("cache_miss", {"key": "cart"})  # untagged: trace only
        events.emit(named_record("receipt_sent", {"databuddy.track": True, "channel": "email"}))


if __name__ == "__main__":
    checkout("pro")
    print("checkout done")
