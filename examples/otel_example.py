"""Tagged span events become Databuddy events: OpenTelemetry in, local ingest server out.

Run it as ``python examples/otel_example.py``: it starts a local ingest server,
records one span with a tagged and an untagged event, flushes, and prints what
the server stored (only the tagged event). Point ``api_url`` at your Databuddy
endpoint (or set ``DATABUDDY_API_URL``) to send for real.
"""

from __future__ import annotations

from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from databuddy_otel import new_anonymous_id
from databuddy_otel.devserver import DevServer
from databuddy_otel.span_exporter import DatabuddyBaggageProcessor, DatabuddySpanExporter


def main() -> int:
    with DevServer() as server:
        provider = TracerProvider(shutdown_on_exit=False)
        # Copies databuddy.* ids from the baggage onto each span as it starts.
        provider.add_span_processor(DatabuddyBaggageProcessor())
        exporter = DatabuddySpanExporter(client_id="example-site", api_url=server.url)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracer = provider.get_tracer("shop")

        # At the edge (e.g. HTTP middleware): the visitor's id, carried in the baggage.
        token = context.attach(baggage.set_baggage("databuddy.anonymous_id", new_anonymous_id()))
        try:
            with tracer.start_as_current_span("checkout") as span:
                span.add_event("purchase", {"databuddy.track": True, "plan": "pro", "amount": 49})
                span.add_event("cache_miss", {"key": "cart"})  # untagged: stays in the trace
        finally:
            context.detach(token)

        provider.force_flush()
        provider.shutdown()
        events = server.events()
        for event in events:
            print(
                f"{event['name']}: anonymousId={event['anonymousId']} "
                f"properties={event['properties']}"
            )
        return 0 if [e["name"] for e in events] == ["purchase"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
